/*
 * insn-count: a QEMU TCG plugin counting the guest instructions executed between calls of a
 * marker function. Every translated instruction adds 1 to a counter (inline, exact); when the
 * instruction at the marker's address executes, the counter's value is appended to a list.
 * At exit the list goes to `out` (one cumulative count per line), so consecutive differences
 * are the instructions between two marker calls (the marker's own call and return included).
 *
 *   qemu-system-arm ... -plugin ./libinsn_count.so,marker=0x1234,out=counts.txt -kernel fw.elf
 *
 * marker: the marker function's address (from the ELF's symbol table; a Thumb address's low bit
 * is ignored). Or symbol=NAME: the marker by name, for position-independent executables whose
 * load address is not known in advance (qemu-aarch64 on a PIE): a hit is the first instruction
 * of a translation block in that symbol (a call enters a function at the start of a block), so
 * the marker must be a branch-free function that is never inlined.
 * Single vCPU guests only (Cortex-M, single-threaded user programs). Built against qemu-plugin.h
 * from QEMU's source (scripts/lib.sh's build_insn_count_plugin fetches Debian's qemu source
 * package; the header is not committed).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

static uint64_t executed;
static uint64_t marker;
static char marker_symbol[256];
static char out_path[4096];
static uint64_t *hits;
static size_t n_hits, cap_hits;

static void on_marker(unsigned int vcpu, void *udata)
{
    (void)vcpu;
    (void)udata;
    if (n_hits == cap_hits) {
        cap_hits = cap_hits ? 2 * cap_hits : 1024;
        hits = realloc(hits, cap_hits * sizeof *hits);
        if (!hits) {
            fprintf(stderr, "insn-count: out of memory\n");
            exit(1);
        }
    }
    hits[n_hits++] = executed;
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &executed, 1);
        int hit;
        if (marker_symbol[0]) {
            const char *sym = qemu_plugin_insn_symbol(insn);
            hit = i == 0 && sym && strcmp(sym, marker_symbol) == 0;
        } else {
            hit = (qemu_plugin_insn_vaddr(insn) & ~(uint64_t)1) == marker;
        }
        if (hit) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_marker, QEMU_PLUGIN_CB_NO_REGS, NULL);
        }
    }
}

static void write_counts(qemu_plugin_id_t id, void *udata)
{
    (void)id;
    (void)udata;
    FILE *f = fopen(out_path, "w");
    if (!f) {
        perror("insn-count: out");
        return;
    }
    fprintf(f, "# insn-count: marker %s 0x%" PRIx64 ", %zu hits, %" PRIu64 " instructions in all\n", marker_symbol, marker, n_hits,
            executed);
    for (size_t i = 0; i < n_hits; i++) {
        fprintf(f, "%" PRIu64 "\n", hits[i]);
    }
    fclose(f);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "marker=", 7) == 0) {
            marker = strtoull(argv[i] + 7, NULL, 0) & ~(uint64_t)1;
        } else if (strncmp(argv[i], "symbol=", 7) == 0 && strlen(argv[i] + 7) < sizeof marker_symbol) {
            strcpy(marker_symbol, argv[i] + 7);
        } else if (strncmp(argv[i], "out=", 4) == 0 && strlen(argv[i] + 4) < sizeof out_path) {
            strcpy(out_path, argv[i] + 4);
        } else {
            fprintf(stderr, "insn-count: unknown argument '%s' (marker=ADDR or symbol=NAME, out=FILE)\n", argv[i]);
            return -1;
        }
    }
    if ((!marker && !marker_symbol[0]) || !out_path[0]) {
        fprintf(stderr, "insn-count: needs marker=ADDR or symbol=NAME, and out=FILE\n");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, write_counts, NULL);
    return 0;
}
