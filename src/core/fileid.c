#include "core/fileid.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "core/util.h"

/* Find NT_GNU_BUILD_ID in the PT_NOTE segments of a 64-bit ELF file. */
static void read_build_id(int fd, struct file_ident *id)
{
	Elf64_Ehdr eh;
	uint8_t notes[4096];

	if (pread_all(fd, &eh, sizeof(eh), 0) < 0 || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(Elf64_Phdr) ||
	    eh.e_phnum > 256)
		return;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		if (pread_all(fd, &ph, sizeof(ph), eh.e_phoff + i * sizeof(ph)) < 0)
			return;
		if (ph.p_type != PT_NOTE)
			continue;
		size_t len = ph.p_filesz < sizeof(notes) ? ph.p_filesz : sizeof(notes);
		if (pread_all(fd, notes, len, ph.p_offset) < 0)
			continue;
		size_t off = 0;
		while (off + sizeof(Elf64_Nhdr) <= len) {
			Elf64_Nhdr nh;
			memcpy(&nh, notes + off, sizeof(nh));
			size_t name_off = off + sizeof(nh);
			size_t desc_off = name_off + ((nh.n_namesz + 3) & ~3u);
			size_t next = desc_off + ((nh.n_descsz + 3) & ~3u);
			if (next > len || next <= off)
				break;
			if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
			    !memcmp(notes + name_off, "GNU", 4) && nh.n_descsz <= sizeof(id->build_id)) {
				memcpy(id->build_id, notes + desc_off, nh.n_descsz);
				id->build_id_len = nh.n_descsz;
				return;
			}
			off = next;
		}
	}
}

int fileid_of_fd(int fd, const char *name, struct file_ident *id, struct ferry_err *err)
{
	struct stat st;

	memset(id, 0, sizeof(*id));
	if (fstat(fd, &st) < 0)
		return ferry_fail_errno(err, "stat %s", name);
	id->size = st.st_size;
	id->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
	id->mode = st.st_mode;
	if (S_ISREG(st.st_mode))
		read_build_id(fd, id);
	return 0;
}

int fileid_of_path(const char *path, struct file_ident *id, struct ferry_err *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);

	if (fd < 0)
		return ferry_fail_errno(err, "open %s", path);
	return fileid_of_fd(fd, path, id, err);
}

int fileid_compare(const char *path, const struct file_ident *want, const struct file_ident *have,
		   struct ferry_err *err)
{
	if ((want->mode & S_IFMT) != (have->mode & S_IFMT))
		return ferry_refuse(err, ESTALE, "%s: file type changed since the dump", path);
	if (!S_ISREG(want->mode))
		return 0;
	if (want->size != have->size)
		return ferry_refuse(err, ESTALE, "%s: size is %llu, the image expects %llu", path,
				  (unsigned long long)have->size, (unsigned long long)want->size);
	if (want->build_id_len) {
		if (want->build_id_len != have->build_id_len ||
		    memcmp(want->build_id, have->build_id, want->build_id_len))
			return ferry_refuse(err, ESTALE, "%s: ELF build-id differs from the image's",
					  path);
		return 0;
	}
	if (want->mtime_ns != have->mtime_ns)
		return ferry_refuse(err, ESTALE, "%s: modified since the dump (mtime differs)", path);
	return 0;
}
