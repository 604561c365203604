/* The input files mapped in memory, named when one changes under its map (internal).
 *
 * Local Parquet and Arrow IPC files are read through a memory map (no copy of their bytes). A
 * file truncated (or rewritten in place) while it is mapped makes the next read of a page
 * beyond its new end raise SIGBUS, inside pyarrow's decoder or a kernel reading a slice in
 * place: no Python exception can be raised there, and by default the process dies with the
 * shell's "Bus error". So the reader records each map's address range and file (watch), and
 * the command's process (not a program that imports the library) installs a SIGBUS handler
 * (install) that writes one line naming the file whose pages faulted and ends the process
 * with the command's code for bad input. Any other SIGBUS (an address in no recorded map, or
 * not a mapped file's fault) goes to the handler installed before, or to the default action.
 *
 * watch(address, size, name)  the map at `address` of `size` bytes holds the file `name`
 *                 (ranges it overlaps are forgotten: their maps are gone)
 * install(code, prefix)  the handler: on a SIGBUS at an address in a recorded map, writes
 *                 prefix + name + RULE (below) to stderr and ends the process with _exit(code)
 *
 * A map's range stays recorded after the file is closed (buffers read from the map may keep it
 * alive, and the kernels read them); the table keeps the latest SLOTS maps, each name cut to
 * NAME_BYTES. The handler calls only async-signal-safe functions (write, _exit, sigaction,
 * raise).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#define SLOTS 256
#define NAME_BYTES 1024

typedef struct {
    volatile uintptr_t start; /* 0: free */
    volatile uintptr_t end;
    volatile size_t length;
    char name[NAME_BYTES];
} Map;

static Map maps[SLOTS];
static unsigned next_slot = 0;
static volatile int lock = 0;
static struct sigaction previous;
static int installed = 0;
static int exit_code = 1;
static char prefix[256];
static size_t prefix_length = 0;

static const char RULE[] =
    ": the file changed while it was read (truncated or rewritten in place); write a new file "
    "and rename it into place\n";

static void write_all(const char *text, size_t length) {
    while (length > 0) {
        ssize_t written = write(2, text, length);
        if (written <= 0) {
            return;
        }
        text += written;
        length -= (size_t)written;
    }
}

static void on_sigbus(int signal_number, siginfo_t *info, void *context) {
    uintptr_t address = info == NULL ? 0 : (uintptr_t)info->si_addr;
    for (int i = 0; address != 0 && i < SLOTS; i++) {
        uintptr_t start = maps[i].start;
        if (start != 0 && start <= address && address < maps[i].end) {
            write_all(prefix, prefix_length);
            write_all(maps[i].name, maps[i].length);
            write_all(RULE, sizeof(RULE) - 1);
            _exit(exit_code);
        }
    }
    if ((previous.sa_flags & SA_SIGINFO) && previous.sa_sigaction != NULL) {
        previous.sa_sigaction(signal_number, info, context);
        return;
    }
    if (!(previous.sa_flags & SA_SIGINFO) && previous.sa_handler != SIG_DFL &&
        previous.sa_handler != SIG_IGN) {
        previous.sa_handler(signal_number);
        return;
    }
    /* the default action, once this handler returns (the signal is blocked until then): a
     * fault ends the process there; so does a SIGBUS sent by kill() */
    struct sigaction fallback;
    memset(&fallback, 0, sizeof(fallback));
    fallback.sa_handler = SIG_DFL;
    sigemptyset(&fallback.sa_mask);
    sigaction(SIGBUS, &fallback, NULL);
    raise(SIGBUS);
}

static PyObject *guard_watch(PyObject *self, PyObject *args) {
    unsigned long long address, size;
    const char *name;
    Py_ssize_t length;
    if (!PyArg_ParseTuple(args, "KKs#", &address, &size, &name, &length)) {
        return NULL;
    }
    if (address == 0 || size == 0) {
        Py_RETURN_NONE;
    }
    uintptr_t start = (uintptr_t)address, end = (uintptr_t)(address + size);
    size_t kept = (size_t)length < NAME_BYTES ? (size_t)length : NAME_BYTES;
    while (__sync_lock_test_and_set(&lock, 1)) {
    }
    for (int i = 0; i < SLOTS; i++) { /* a range reused: the map recorded there is gone */
        if (maps[i].start != 0 && maps[i].start < end && start < maps[i].end) {
            maps[i].start = 0;
        }
    }
    Map *slot = &maps[next_slot++ % SLOTS];
    slot->start = 0; /* the handler skips the slot while it changes */
    __sync_synchronize();
    memcpy(slot->name, name, kept);
    slot->length = kept;
    slot->end = end;
    __sync_synchronize();
    slot->start = start;
    __sync_lock_release(&lock);
    Py_RETURN_NONE;
}

static PyObject *guard_install(PyObject *self, PyObject *args) {
    int code;
    const char *text;
    Py_ssize_t length;
    if (!PyArg_ParseTuple(args, "is#", &code, &text, &length)) {
        return NULL;
    }
    if ((size_t)length >= sizeof(prefix)) {
        PyErr_SetString(PyExc_ValueError, "prefix too long");
        return NULL;
    }
    memcpy(prefix, text, (size_t)length);
    prefix_length = (size_t)length;
    exit_code = code;
    if (!installed) {
        struct sigaction action;
        memset(&action, 0, sizeof(action));
        action.sa_sigaction = on_sigbus;
        action.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&action.sa_mask);
        if (sigaction(SIGBUS, &action, &previous) != 0) {
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        installed = 1;
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"watch", guard_watch, METH_VARARGS,
     "watch(address, size, name): the map at address of size bytes holds the file name."},
    {"install", guard_install, METH_VARARGS,
     "install(code, prefix): a SIGBUS in a watched map names its file, then _exit(code)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_guard", "The input files mapped in memory (see _guard.c).", -1,
    methods,
};

PyMODINIT_FUNC PyInit__guard(void) { return PyModule_Create(&module); }
