#include "core/vdso.h"

#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

int vdso_parse_syms(const uint8_t *buf, size_t len, struct vdso_sym *syms, int max)
{
	const Elf64_Ehdr *eh = (const void *)buf;
	int n = 0;

	if (len < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_shentsize != sizeof(Elf64_Shdr) || eh->e_shoff >= len ||
	    eh->e_shoff + (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) > len)
		return -EINVAL;
	const Elf64_Shdr *sh = (const void *)(buf + eh->e_shoff);
	for (unsigned i = 0; i < eh->e_shnum; i++) {
		if (sh[i].sh_type != SHT_DYNSYM || sh[i].sh_link >= eh->e_shnum)
			continue;
		const Elf64_Shdr *str = &sh[sh[i].sh_link];
		if (sh[i].sh_offset + sh[i].sh_size > len || str->sh_offset + str->sh_size > len ||
		    sh[i].sh_entsize != sizeof(Elf64_Sym))
			return -EINVAL;
		const Elf64_Sym *sym = (const void *)(buf + sh[i].sh_offset);
		size_t count = sh[i].sh_size / sizeof(Elf64_Sym);
		for (size_t j = 0; j < count && n < max; j++) {
			if (!sym[j].st_name || sym[j].st_name >= str->sh_size ||
			    sym[j].st_shndx == SHN_UNDEF)
				continue;
			const char *name = (const char *)buf + str->sh_offset + sym[j].st_name;
			size_t maxlen = str->sh_size - sym[j].st_name;
			size_t nl = strnlen(name, maxlen);
			if (nl == maxlen || nl >= sizeof(syms[n].name))
				continue;
			memcpy(syms[n].name, name, nl + 1);
			syms[n].offset = sym[j].st_value;
			n++;
		}
		return n;
	}
	return -EINVAL;
}

int vdso_self_layout(struct vdso_layout *l)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];

	memset(l, 0, sizeof(*l));
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e;
		char name[64] = "";
		if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %63s", &s, &e, name) < 2)
			continue;
		if (!strcmp(name, "[vvar]")) {
			l->vvar_start = s;
			l->vvar_size = e - s;
		} else if (!strcmp(name, "[vvar_vclock]")) {
			l->vclock_start = s;
			l->vclock_size = e - s;
		} else if (!strcmp(name, "[vdso]")) {
			l->vdso_start = s;
			l->vdso_size = e - s;
		}
	}
	fclose(f);
	return 0;
}
