/*
 * netconsole.collector._lane: the receiver's express lane, in C.
 *
 * Almost every datagram a receiver gets is the next extended record of a
 * sender it already knows, in one piece, with nothing to account but "seq went
 * up" -- by one, or by a few when the network (or the receiver's own socket,
 * overloaded) lost some. The Python path (wire -> SenderStream -> IncidentTable
 * -> store codec) spends many times what this module does on such a record (see
 * docs/benchmarks.md): it receives it with recvmmsg(2), checks that it is
 * exactly that case, and turns it into the store's INSERT row. Everything else --
 * a fragment, a duplicate or late arrival, a reboot, basic mode, escapes, a
 * record that may start an incident -- goes to the Python path untouched, in
 * arrival order.
 *
 * The Python side (collector/_express.py) owns the rules; this file only
 * applies them to the state a `Lane` holds:
 *
 *   seq > lane.seq                (no duplicate, no late arrival: the next record,
 *                                  or a forward jump of at most `Receiver.window`,
 *                                  the stream's WINDOW, with a `gap_type`)
 *   seq <= lane.seq_limit         (every open hole stays inside the stream's window:
 *                                  SeqTracker.horizon; msgid likewise)
 *   ts_usec + ts_back >= lane.ts  (no reboot by time going back; `Receiver.ts_back`
 *                                  is the stream's TS_BACK_TOLERANCE_USEC, set from
 *                                  Python; the build-time constants DATAGRAM_MAX and
 *                                  MAX_DIGITS are exported and a test checks Python's)
 *   release absent or == lane.release
 *   msgid absent, or lane.msgid >= 0 and msgid + base > lane.msgid (a jump as seq's)
 *   no `pstore` field; the incident trigger does not match the text
 *   text and fields printable ASCII without `\` (nothing escaped)
 *   header: [release,]prefix,seq,ts,flag[,caller=...];  nothing else
 *
 * A forward jump is kept in `lane.gaps` (a `gap_type`, stream.ExpressGap, per
 * jump; MAX_LANE_GAPS at most) for Python, which opens the same holes in the
 * SenderStream when it next catches it up (`SenderStream.express_advance`): they
 * wait there for late arrivals and are reported as the ordinary path reports
 * them. Without this, an overloaded receiver would send every sender's next
 * record after a drop the slow way, exactly when it has no time to spare.
 *
 * A datagram of a lane that breaks a rule is handed to Python with its lane,
 * and the lane is made inactive: Python brings its SenderStream up to date
 * from the lane, runs the datagram through the ordinary path, and then either
 * reactivates the lane with the stream's new state or removes it.
 *
 * The row is a `store._codec.PrebuiltRow` (the class `Receiver` is given as
 * `row_type`), exactly `prebuilt_row(record, host_id, boot)` of the Record the
 * Python path would make (tests/unit/collector/test_lane.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <string.h>
#include <linux/sock_diag.h>
#include <stdint.h>
#include <sys/socket.h>

#define DATAGRAM_MAX 2048 /* as _sockets.DATAGRAM_MAX */
#define NAME_LEN ((socklen_t)sizeof(struct sockaddr_in6))
#define MAX_DIGITS 18 /* fits an int64: longer goes the slow way (exported; Python agrees) */
#define MAX_FIELDS 64
#define MAX_LANE_GAPS 16 /* forward gaps a lane keeps until Python takes them */

/* -- Lane ----------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *sender;  /* netconsole.stream.Sender */
    PyObject *key;     /* raw sockaddr bytes: the key in the lanes dict */
    PyObject *host_id; /* int: hosts.id */
    PyObject *boot;    /* int: hosts.boot for these records */
    PyObject *release; /* str or None: the stream's release */
    PyObject *name;    /* bytes or None: the newest hostname= of express records */
    PyObject *gaps;    /* list or None: forward gaps taken since Python last took them */
    long long seq;     /* the newest printk seq */
    long long ts;      /* its ts_usec */
    long long msgid;   /* newest msgid + base; -1: no msgid tracker */
    long long msgid_base;
    long long seq_limit;   /* the highest seq to take: an open hole's horizon */
    long long msgid_limit; /* the same for msgid + base */
    double last;       /* last_seen */
    int active;
    Py_ssize_t fresh; /* express records since Python last took them (per receive) */
    Py_ssize_t batch; /* express records since the store last counted them (per batch) */
    double first;     /* when the first of those arrived */
    double tokens;    /* the sender's budget (see Receiver.rate) left at `stamp` */
    double stamp;
    double noisy_until; /* shed lately: the budget applies until then, behind or not */
    Py_ssize_t shed;  /* records shed since Python last took the count */
} Lane;

static void Lane_dealloc(Lane *self) {
    Py_XDECREF(self->sender);
    Py_XDECREF(self->key);
    Py_XDECREF(self->host_id);
    Py_XDECREF(self->boot);
    Py_XDECREF(self->release);
    Py_XDECREF(self->name);
    Py_XDECREF(self->gaps);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Lane_new(PyTypeObject *type, PyObject *Py_UNUSED(args),
                          PyObject *Py_UNUSED(kw)) {
    Lane *self = (Lane *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    Py_INCREF(Py_None); self->sender = Py_None;
    Py_INCREF(Py_None); self->key = Py_None;
    Py_INCREF(Py_None); self->host_id = Py_None;
    Py_INCREF(Py_None); self->boot = Py_None;
    Py_INCREF(Py_None); self->release = Py_None;
    Py_INCREF(Py_None); self->name = Py_None;
    Py_INCREF(Py_None); self->gaps = Py_None;
    self->msgid = -1;
    self->seq_limit = self->msgid_limit = LLONG_MAX;
    return (PyObject *)self;
}

static PyMemberDef Lane_members[] = {
    {"sender", T_OBJECT_EX, offsetof(Lane, sender), 0, "the Sender"},
    {"key", T_OBJECT_EX, offsetof(Lane, key), 0, "raw sockaddr bytes (the lanes dict key)"},
    {"host_id", T_OBJECT_EX, offsetof(Lane, host_id), 0, "hosts.id"},
    {"boot", T_OBJECT_EX, offsetof(Lane, boot), 0, "hosts.boot of these records"},
    {"release", T_OBJECT_EX, offsetof(Lane, release), 0, "the stream's release, or None"},
    {"name", T_OBJECT_EX, offsetof(Lane, name), 0, "newest hostname= value (bytes) or None"},
    {"gaps", T_OBJECT_EX, offsetof(Lane, gaps), 0,
     "forward gaps taken (a list of `gap_type`) since Python took them, or None"},
    {"seq", T_LONGLONG, offsetof(Lane, seq), 0, "newest printk seq"},
    {"ts", T_LONGLONG, offsetof(Lane, ts), 0, "ts_usec of the newest seq"},
    {"msgid", T_LONGLONG, offsetof(Lane, msgid), 0, "newest msgid + base; -1: none"},
    {"msgid_base", T_LONGLONG, offsetof(Lane, msgid_base), 0, "msgid wrap base"},
    {"seq_limit", T_LONGLONG, offsetof(Lane, seq_limit), 0,
     "highest seq to take (an open hole's horizon)"},
    {"msgid_limit", T_LONGLONG, offsetof(Lane, msgid_limit), 0,
     "highest msgid + base to take"},
    {"last", T_DOUBLE, offsetof(Lane, last), 0, "last_seen"},
    {"active", T_INT, offsetof(Lane, active), 0, "1 while the C side may take records"},
    {"fresh", T_PYSSIZET, offsetof(Lane, fresh), 0, "records taken since Python looked"},
    {"batch", T_PYSSIZET, offsetof(Lane, batch), 0, "records taken since the store counted"},
    {"first", T_DOUBLE, offsetof(Lane, first), 0, "when the first of `batch` arrived"},
    {"tokens", T_DOUBLE, offsetof(Lane, tokens), 0, "budget left at `stamp`"},
    {"stamp", T_DOUBLE, offsetof(Lane, stamp), 0, "when `tokens` was last refilled"},
    {"noisy_until", T_DOUBLE, offsetof(Lane, noisy_until), 0,
     "shed lately: its budget applies until then, the receiver behind or not"},
    {"shed", T_PYSSIZET, offsetof(Lane, shed), 0, "records shed since Python took the count"},
    {NULL}};

static PyTypeObject LaneType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "netconsole.collector._lane.Lane",
    .tp_basicsize = sizeof(Lane),
    .tp_dealloc = (destructor)Lane_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One sender's express state (see collector/_express.py).",
    .tp_members = Lane_members,
    .tp_new = Lane_new,
};

/* -- parsing ---------------------------------------------------------------- */

/* Digits [p, end) up to `stop`; 1..MAX_DIGITS of them. Returns the end or NULL. */
static const char *parse_num(const char *p, const char *end, char stop, long long *out) {
    long long v = 0;
    const char *start = p;
    while (p < end && *p >= '0' && *p <= '9') {
        if (p - start >= MAX_DIGITS) return NULL;
        v = v * 10 + (*p - '0');
        p++;
    }
    if (p == start || p >= end || *p != stop) return NULL;
    *out = v;
    return p;
}

/* 1: `bytes.isdigit()` and it fits (*out set); 0: not digits; -1: digits, too many. */
static int all_digits(const char *p, Py_ssize_t n, long long *out) {
    long long v = 0;
    if (n == 0) return 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return 0;
        if (i < MAX_DIGITS) v = v * 10 + (p[i] - '0');
    }
    if (n > MAX_DIGITS) return -1;
    *out = v;
    return 1;
}

static inline int printable(const char *p, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20 || c > 0x7e || c == '\\') return 0;
    }
    return 1;
}

static PyObject *ascii_str(const char *p, Py_ssize_t n) {
    PyObject *s = PyUnicode_New(n, 127);
    if (s != NULL) memcpy(PyUnicode_DATA(s), p, n);
    return s;
}

typedef struct {
    const char *key, *value;
    Py_ssize_t klen, vlen;
} Field;

typedef struct {
    /* header */
    const char *release;
    Py_ssize_t release_len;
    long long prefix, seq, ts;
    char flag;
    const char *caller;
    Py_ssize_t caller_len;
    /* body */
    const char *text;
    Py_ssize_t text_len;
    Field fields[MAX_FIELDS];
    int nfields;
    int msgid, cpu, taskname, hostname, sysrelease; /* index of the last such field, or -1 */
} Parsed;

static int is_key(const Field *f, const char *name) {
    size_t n = strlen(name);
    return (size_t)f->klen == n && memcmp(f->key, name, n) == 0;
}

/* 1: a plain extended record this lane may take; 0: not (the Python path decides). */
static int parse(const char *p, Py_ssize_t len, Parsed *out) {
    const char *end = p + len, *q;
    /* The first token: all digits is the prefix; else it is the release (6.6+). */
    q = memchr(p, ',', len);
    if (q == NULL || q == p) return 0;
    out->release = NULL;
    out->release_len = 0;
    int digits = 1;
    for (const char *c = p; c < q; c++) {
        unsigned char ch = (unsigned char)*c;
        if (ch <= 0x20 || ch > 0x7e || ch == ';') return 0;
        if (ch < '0' || ch > '9') digits = 0;
    }
    if (!digits) {
        out->release = p;
        out->release_len = q - p;
        p = q + 1;
    }
    if ((p = parse_num(p, end, ',', &out->prefix)) == NULL) return 0;
    if ((p = parse_num(p + 1, end, ',', &out->seq)) == NULL) return 0;
    if ((p = parse_num(p + 1, end, ',', &out->ts)) == NULL) return 0;
    p++;
    if (p + 2 > end || (*p != '-' && *p != 'c' && *p != '+')) return 0;
    out->flag = *p++;
    out->caller = NULL;
    out->caller_len = 0;
    if (*p == ',') {
        /* Only `caller=`: anything else (ncfrag, unknown fields) is the slow path's. */
        p++;
        const char *semi = memchr(p, ';', end - p);
        if (semi == NULL || semi - p < 7 || memcmp(p, "caller=", 7) != 0) return 0;
        if (memchr(p, ',', semi - p) != NULL || !printable(p + 7, semi - p - 7)) return 0;
        out->caller = p + 7;
        out->caller_len = semi - p - 7;
        p = semi;
    }
    if (*p != ';') return 0;
    p++;
    /* Body: text, then ` KEY=value` lines (wire/_decode.parse_body). */
    const char *nl = memchr(p, '\n', end - p);
    const char *text_end = nl ? nl : end;
    if (!printable(p, text_end - p)) return 0;
    out->text = p;
    out->text_len = text_end - p;
    out->nfields = 0;
    out->msgid = out->cpu = out->taskname = out->hostname = out->sysrelease = -1;
    if (nl == NULL) return 1;
    p = nl + 1;
    while (p < end) {
        const char *line_end = memchr(p, '\n', end - p);
        if (line_end == NULL) line_end = end;
        if (*p != ' ' || out->nfields == MAX_FIELDS) return 0;
        const char *eq = memchr(p, '=', line_end - p);
        if (eq == NULL || !printable(p, line_end - p)) return 0;
        Field *f = &out->fields[out->nfields];
        f->key = p + 1;
        f->klen = eq - p - 1;
        f->value = eq + 1;
        f->vlen = line_end - eq - 1;
        if (is_key(f, "msgid")) out->msgid = out->nfields;
        else if (is_key(f, "cpu")) out->cpu = out->nfields;
        else if (is_key(f, "taskname")) out->taskname = out->nfields;
        else if (is_key(f, "hostname")) out->hostname = out->nfields;
        else if (is_key(f, "release")) out->sysrelease = out->nfields;
        else if (is_key(f, "pstore")) return 0; /* a crash dump of an earlier boot */
        out->nfields++;
        p = line_end + 1; /* a final "\n" ends the last line; it opens no empty one */
    }
    return 1;
}

/* `json.dumps([[k, v], ...])` for printable ASCII without backslashes. */
static PyObject *fields_json(const Parsed *m) {
    Py_ssize_t n = 2;
    for (int i = 0; i < m->nfields; i++) {
        const Field *f = &m->fields[i];
        n += 8 + f->klen + f->vlen + (i ? 2 : 0); /* ["k", "v"] */
        for (Py_ssize_t j = 0; j < f->klen; j++) n += f->key[j] == '"';
        for (Py_ssize_t j = 0; j < f->vlen; j++) n += f->value[j] == '"';
    }
    PyObject *s = PyUnicode_New(n, 127);
    if (s == NULL) return NULL;
    char *o = (char *)PyUnicode_DATA(s);
    *o++ = '[';
    for (int i = 0; i < m->nfields; i++) {
        const Field *f = &m->fields[i];
        if (i) { *o++ = ','; *o++ = ' '; }
        *o++ = '['; *o++ = '"';
        for (Py_ssize_t j = 0; j < f->klen; j++) {
            if (f->key[j] == '"') *o++ = '\\';
            *o++ = f->key[j];
        }
        *o++ = '"'; *o++ = ','; *o++ = ' '; *o++ = '"';
        for (Py_ssize_t j = 0; j < f->vlen; j++) {
            if (f->value[j] == '"') *o++ = '\\';
            *o++ = f->value[j];
        }
        *o++ = '"'; *o++ = ']';
    }
    *o++ = ']';
    return s;
}

static PyObject *s_empty;

static PyObject *empty(void) {
    Py_INCREF(s_empty);
    return s_empty;
}

/* The value of field `i` as `_int` in store/_codec does (digits -> int), with -1 for None. */
static PyObject *field_int(const Parsed *m, int i) {
    long long v;
    if (i < 0 || all_digits(m->fields[i].value, m->fields[i].vlen, &v) != 1) v = -1;
    return PyLong_FromLongLong(v);
}

static int same_text(PyObject *str, const char *p, Py_ssize_t n) {
    Py_ssize_t size;
    const char *u = PyUnicode_AsUTF8AndSize(str, &size);
    return u != NULL && size == n && memcmp(u, p, n) == 0;
}

/* -- Receiver ----------------------------------------------------------------- */

#define BATCH 256
#define MAX_LITERALS 64

typedef struct {
    PyObject_HEAD
    int fd;
    PyObject *lanes;   /* dict: raw sockaddr bytes -> Lane */
    PyObject *trigger; /* TRIGGER_BYTES.search */
    PyObject *literals; /* TRIGGER_LITERALS: a bytes tuple, kept alive for `literal` */
    int nliterals;
    struct { const char *p; Py_ssize_t n; } literal[MAX_LITERALS];
    unsigned char starts[256]; /* bytes that begin a literal */
    PyObject *now;     /* float of the current step */
    PyObject *touched; /* list: lanes whose `fresh` went from 0 to 1 */
    PyObject *batched; /* list: lanes whose `batch` went from 0 to 1 */
    PyObject *shedding; /* list: lanes whose `shed` went from 0 to 1 */
    PyTypeObject *row_type; /* store._codec.PrebuiltRow: a tuple subclass, the rows' class */
    PyObject *gap_type; /* stream.ExpressGap, called for a forward gap; NULL: none taken */
    PyTypeObject *handed_type; /* collector._express.HandedOut: a tuple subclass, or NULL */
    long long ts_back; /* SenderStream's TS_BACK_TOLERANCE_USEC, set by collector/_express.py */
    long long window;  /* SeqTracker's WINDOW: the longest forward gap to take (0: none) */
    double rate, burst; /* per-sender budget, records/s and most saved up; rate 0: none */
    double hold;        /* how long the receiver counts as behind after a full recvmmsg */
    double noisy_hold;  /* how long a sender over its budget stays under it */
    double behind_fill; /* ... with its socket's queue past this share of the buffer */
    uint32_t drops;     /* the socket's drop count when last looked at */
    double behind_until;
    int full;           /* the last recvmmsg filled the buffer: more was waiting */
    unsigned long long datagrams, bytes;
    int count, next; /* datagrams in the buffer, and the next one to look at */
    struct mmsghdr msgs[BATCH];
    struct iovec iovs[BATCH];
    char names_buf[BATCH][sizeof(struct sockaddr_in6)];
    char bufs[BATCH][DATAGRAM_MAX];
} Receiver;

static PyObject *s_extended, *s_flag_none, *s_flag_cont, *s_flag_frag;

static void Receiver_dealloc(Receiver *self) {
    Py_XDECREF(self->lanes);
    Py_XDECREF(self->trigger);
    Py_XDECREF(self->literals);
    Py_XDECREF(self->now);
    Py_XDECREF(self->touched);
    Py_XDECREF(self->batched);
    Py_XDECREF(self->shedding);
    Py_XDECREF(self->row_type);
    Py_XDECREF(self->gap_type);
    Py_XDECREF(self->handed_type);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Receiver_init(Receiver *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"fd", "lanes", "trigger", "literals", "row_type", "gap_type",
                             "handed_type", NULL};
    int fd;
    PyObject *lanes, *trigger, *literals = NULL, *gap_type = NULL;
    PyTypeObject *row_type = NULL, *handed_type = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "iO!O|O!$O!OO!", kwlist, &fd, &PyDict_Type,
                                     &lanes, &trigger, &PyTuple_Type, &literals, &PyType_Type,
                                     &row_type, &gap_type, &PyType_Type, &handed_type))
        return -1;
    /* `step` fills a handed-out datagram in as a tuple: the class must be one. */
    if (handed_type != NULL && !PyType_IsSubtype(handed_type, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "handed_type must be a tuple subclass");
        return -1;
    }
    Py_XINCREF(handed_type);
    Py_XSETREF(self->handed_type, handed_type);
    if (gap_type == Py_None) gap_type = NULL;
    Py_XINCREF(gap_type);
    Py_XSETREF(self->gap_type, gap_type);
    /* `take` fills the rows in as tuples: the class must be one. */
    if (row_type == NULL || !PyType_IsSubtype(row_type, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "row_type must be given, a tuple subclass");
        return -1;
    }
    Py_INCREF(row_type);
    Py_XSETREF(self->row_type, row_type);
    self->fd = fd;
    Py_INCREF(lanes);
    Py_XSETREF(self->lanes, lanes);
    Py_INCREF(trigger);
    Py_XSETREF(self->trigger, trigger);
    /* No literals (or none given): every record is asked of `trigger`. */
    if (literals != NULL && PyTuple_GET_SIZE(literals) == 0) literals = NULL;
    self->nliterals = 0;
    memset(self->starts, 0, sizeof self->starts);
    if (literals != NULL) {
        if (PyTuple_GET_SIZE(literals) > MAX_LITERALS) {
            PyErr_SetString(PyExc_ValueError, "too many trigger literals");
            return -1;
        }
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(literals); i++) {
            PyObject *lit = PyTuple_GET_ITEM(literals, i);
            if (!PyBytes_Check(lit) || PyBytes_GET_SIZE(lit) == 0) {
                PyErr_SetString(PyExc_TypeError, "trigger literals must be non-empty bytes");
                return -1;
            }
            self->literal[i].p = PyBytes_AS_STRING(lit);
            self->literal[i].n = PyBytes_GET_SIZE(lit);
            self->starts[(unsigned char)self->literal[i].p[0]] = 1;
        }
        self->nliterals = (int)PyTuple_GET_SIZE(literals);
        Py_INCREF(literals);
    }
    Py_XSETREF(self->literals, literals);
    Py_XSETREF(self->touched, PyList_New(0));
    Py_XSETREF(self->batched, PyList_New(0));
    Py_XSETREF(self->shedding, PyList_New(0));
    if (self->touched == NULL || self->batched == NULL || self->shedding == NULL) return -1;
    for (int i = 0; i < BATCH; i++) {
        self->iovs[i].iov_base = self->bufs[i];
        self->iovs[i].iov_len = DATAGRAM_MAX;
        memset(&self->msgs[i].msg_hdr, 0, sizeof(struct msghdr));
        self->msgs[i].msg_hdr.msg_name = self->names_buf[i];
        self->msgs[i].msg_hdr.msg_iov = &self->iovs[i];
        self->msgs[i].msg_hdr.msg_iovlen = 1;
    }
    self->count = self->next = 0;
    return 0;
}

/* (host, port) of a raw sockaddr; IPv4 on a dual-stack socket as plain IPv4. Not
   cached: only the Python path needs it, where it is a small part of the cost, and
   a cache held ~200 bytes per sender. */
static PyObject *host_port(PyObject *key) {
    PyObject *hp;
    const char *raw = PyBytes_AS_STRING(key);
    char text[INET6_ADDRSTRLEN];
    const char *host = NULL;
    int port = 0;
    sa_family_t family;
    memcpy(&family, raw, sizeof family);
    if (family == AF_INET && PyBytes_GET_SIZE(key) >= (Py_ssize_t)sizeof(struct sockaddr_in)) {
        struct sockaddr_in sin;
        memcpy(&sin, raw, sizeof sin);
        host = inet_ntop(AF_INET, &sin.sin_addr, text, sizeof text);
        port = ntohs(sin.sin_port);
    } else if (family == AF_INET6 &&
               PyBytes_GET_SIZE(key) >= (Py_ssize_t)sizeof(struct sockaddr_in6)) {
        struct sockaddr_in6 sin6;
        memcpy(&sin6, raw, sizeof sin6);
        host = inet_ntop(AF_INET6, &sin6.sin6_addr, text, sizeof text);
        port = ntohs(sin6.sin6_port);
        if (host != NULL && strncmp(host, "::ffff:", 7) == 0 && strchr(host, '.') != NULL)
            host += 7;
    }
    if (host == NULL) host = "?";
    hp = Py_BuildValue("(si)", host, port);
    return hp;
}

/* Spend one record of the lane's budget at `now`. 0: over it while the receiver is
   behind, so the record is shed (see collector/_budget.py, the same bucket in Python). */
static int spend(Receiver *self, Lane *lane, double now) {
    /* The budget applies while the receiver is behind, and to a sender shed lately
       (else a flood comes back at full cost the moment the socket has drained). */
    if (self->rate <= 0 || (now >= self->behind_until && now >= lane->noisy_until)) return 1;
    /* A bucket last used long ago (or never: stamp 0) refills to the full burst. */
    double tokens = lane->tokens + (now - lane->stamp) * self->rate;
    lane->tokens = tokens > self->burst ? self->burst : tokens;
    lane->stamp = now;
    if (lane->tokens < 1) {
        lane->noisy_until = now + self->noisy_hold;
        return 0;
    }
    lane->tokens -= 1;
    return 1;
}

/* Whether `trigger` must be asked about a text: it holds one of the literals every
   trigger match contains (incidents/_patterns.py), or none were given. A scan in C
   costs a tenth of the regex search it saves on an everyday record. */
static int may_trigger(const Receiver *self, const char *t, Py_ssize_t n) {
    if (self->literals == NULL) return 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!self->starts[(unsigned char)t[i]]) continue;
        for (int k = 0; k < self->nliterals; k++) {
            Py_ssize_t len = self->literal[k].n;
            if (self->literal[k].p[0] == t[i] && len <= n - i &&
                memcmp(t + i, self->literal[k].p, len) == 0)
                return 1;
        }
    }
    return 0;
}

/* Whether a forward jump of `jump` may be taken: gaps are on, the hole it opens stays
   in the window, and the lane has room to keep it until Python takes it. */
static int gap_room(const Receiver *self, const Lane *lane, long long jump) {
    return self->gap_type != NULL && jump <= self->window &&
           (lane->gaps == Py_None || PyList_GET_SIZE(lane->gaps) < MAX_LANE_GAPS);
}

/* Keep the forward gap of the record `m` (seq `jump`, msgid `msgid_jump` ahead of
   the lane) for Python, as `gap_type(seq_top, seq, msgid_top, msgid, at)`, and
   stop the lane at the new hole's horizon. -1: an error set. */
static int note_gap(Receiver *self, Lane *lane, const Parsed *m, long long msgid,
                    long long jump, long long msgid_jump) {
    long long msgid_top = msgid >= 0 ? lane->msgid : -1;
    long long msgid_new = msgid >= 0 ? msgid + lane->msgid_base : -1;
    PyObject *gap = PyObject_CallFunction(self->gap_type, "LLLLO", lane->seq, m->seq, msgid_top,
                                          msgid_new, self->now);
    if (gap == NULL) return -1;
    if (lane->gaps == Py_None) {
        PyObject *list = PyList_New(0);
        if (list == NULL) { Py_DECREF(gap); return -1; }
        Py_SETREF(lane->gaps, list);
    }
    int rc = PyList_Append(lane->gaps, gap);
    Py_DECREF(gap);
    if (rc < 0) return -1;
    /* the hole's first number plus the window, less one (SeqTracker.horizon) */
    if (jump > 1 && lane->seq + self->window < lane->seq_limit)
        lane->seq_limit = lane->seq + self->window;
    if (msgid_jump > 1 && lane->msgid + self->window < lane->msgid_limit)
        lane->msgid_limit = lane->msgid + self->window;
    return 0;
}

/* The INSERT row of a record the lane takes; advances the lane. NULL + no error: not
   taken. Py_None: taken and shed (the sender is over its budget): no row. */
static PyObject *take(Receiver *self, Lane *lane, const char *p, Py_ssize_t len, double now) {
    Parsed m;
    if (!parse(p, len, &m)) return NULL;
    /* The next seq, or (with a gap_type) a forward jump short enough that the hole it
       opens stays in the stream's window: SeqTracker.observe would report nothing. */
    long long jump = m.seq - lane->seq;
    if (jump < 1 || m.seq > lane->seq_limit || m.ts + self->ts_back < lane->ts) return NULL;
    if (jump > 1 && !gap_room(self, lane, jump)) return NULL;
    /* The release: the header's, else the last `release=` field (§4.6). */
    const char *rel = m.release;
    Py_ssize_t rel_len = m.release_len;
    if (rel == NULL && m.sysrelease >= 0) {
        rel = m.fields[m.sysrelease].value;
        rel_len = m.fields[m.sysrelease].vlen;
    }
    if (rel != NULL && (lane->release == Py_None || !same_text(lane->release, rel, rel_len))) {
        PyErr_Clear();
        return NULL;
    }
    long long msgid = -1, cpu;
    int digits = m.msgid < 0 ? 0 : all_digits(m.fields[m.msgid].value, m.fields[m.msgid].vlen,
                                              &msgid);
    if (digits < 0) return NULL; /* a number past int64: Python's ints take it */
    long long msgid_jump = 0;
    if (digits == 1) {
        if (lane->msgid < 0) return NULL;
        msgid_jump = msgid + lane->msgid_base - lane->msgid;
        if (msgid_jump < 1 || lane->msgid + msgid_jump > lane->msgid_limit) return NULL;
        if (msgid_jump > 1 && !gap_room(self, lane, msgid_jump)) return NULL;
    } else {
        msgid = -1;
    }
    if (m.cpu >= 0 && all_digits(m.fields[m.cpu].value, m.fields[m.cpu].vlen, &cpu) < 0)
        return NULL;
    /* '' stands for NULL in the row: a real empty value goes the slow way */
    if ((m.caller != NULL && m.caller_len == 0) ||
        (m.taskname >= 0 && m.fields[m.taskname].vlen == 0))
        return NULL;
    PyObject *text = ascii_str(m.text, m.text_len);
    if (text == NULL) return NULL;
    /* A record that may open an incident goes to the detector, the slow way. */
    if (may_trigger(self, m.text, m.text_len)) {
        PyObject *raw = PyBytes_FromStringAndSize(m.text, m.text_len);
        if (raw == NULL) { Py_DECREF(text); return NULL; }
        PyObject *hit = PyObject_CallOneArg(self->trigger, raw);
        Py_DECREF(raw);
        if (hit == NULL) { Py_DECREF(text); return NULL; }
        Py_DECREF(hit);
        if (hit != Py_None) { Py_DECREF(text); return NULL; }
    }
    if ((jump > 1 || msgid_jump > 1) && note_gap(self, lane, &m, msgid, jump, msgid_jump) < 0) {
        Py_DECREF(text);
        return NULL; /* an error set: step() raises it */
    }
    if (!spend(self, lane, now)) { /* in order, starts no report: shed, stream advanced */
        Py_DECREF(text);
        lane->seq = m.seq;
        lane->ts = m.ts;
        if (msgid >= 0) lane->msgid = msgid + lane->msgid_base;
        Py_RETURN_NONE;
    }

    /* A PrebuiltRow (store/_codec.py), INSERT_PREBUILT's parameters: no None, no bool.
       A tuple subclass (checked in Receiver_init): its items are set as a tuple's. */
    PyObject *row = self->row_type->tp_alloc(self->row_type, 16);
    if (row == NULL) { Py_DECREF(text); return NULL; }
    Py_INCREF(lane->host_id);
    PyTuple_SET_ITEM(row, 0, lane->host_id);
    Py_INCREF(self->now);
    PyTuple_SET_ITEM(row, 1, self->now);
    Py_INCREF(s_extended);
    PyTuple_SET_ITEM(row, 2, s_extended);
    /* the header's release: equal to the lane's (checked above), so shared */
    PyObject *release = m.release == NULL ? s_empty : lane->release;
    Py_INCREF(release);
    PyTuple_SET_ITEM(row, 3, release);
    PyTuple_SET_ITEM(row, 4, PyLong_FromLongLong(m.prefix >> 3));
    PyTuple_SET_ITEM(row, 5, PyLong_FromLongLong(m.prefix & 7));
    PyTuple_SET_ITEM(row, 6, PyLong_FromLongLong(m.seq));
    PyTuple_SET_ITEM(row, 7, PyLong_FromLongLong(m.ts));
    PyObject *flag = m.flag == '-' ? s_flag_none : m.flag == 'c' ? s_flag_cont : s_flag_frag;
    Py_INCREF(flag);
    PyTuple_SET_ITEM(row, 8, flag);
    PyTuple_SET_ITEM(row, 9, m.caller != NULL ? ascii_str(m.caller, m.caller_len) : empty());
    PyTuple_SET_ITEM(row, 10, text);
    PyTuple_SET_ITEM(row, 11, m.nfields ? fields_json(&m) : empty());
    PyTuple_SET_ITEM(row, 12, field_int(&m, m.msgid));
    PyTuple_SET_ITEM(row, 13, field_int(&m, m.cpu));
    PyTuple_SET_ITEM(row, 14, m.taskname >= 0 ? ascii_str(m.fields[m.taskname].value,
                                                          m.fields[m.taskname].vlen)
                                              : empty());
    Py_INCREF(lane->boot);
    PyTuple_SET_ITEM(row, 15, lane->boot);
    for (int i = 0; i < 16; i++) {
        if (PyTuple_GET_ITEM(row, i) == NULL) { Py_DECREF(row); return NULL; }
    }
    if (m.hostname >= 0) {
        const Field *f = &m.fields[m.hostname];
        if (lane->name == Py_None || PyBytes_GET_SIZE(lane->name) != f->vlen ||
            memcmp(PyBytes_AS_STRING(lane->name), f->value, f->vlen) != 0) {
            PyObject *name = PyBytes_FromStringAndSize(f->value, f->vlen);
            if (name == NULL) { Py_DECREF(row); return NULL; }
            Py_SETREF(lane->name, name);
        }
    }
    lane->seq = m.seq;
    lane->ts = m.ts;
    if (msgid >= 0) lane->msgid = msgid + lane->msgid_base;
    return row;
}

/* Whether the socket is in danger (SO_MEMINFO): its queue past `behind_fill` of its
   buffer, or the kernel dropped datagrams on it since the last look. Unknown: yes. */
static int in_danger(Receiver *self) {
    uint32_t mem[SK_MEMINFO_VARS];
    socklen_t len = sizeof mem;
    if (getsockopt(self->fd, SOL_SOCKET, SO_MEMINFO, mem, &len) < 0 ||
        mem[SK_MEMINFO_RCVBUF] == 0)
        return 1;
    int dropped = mem[SK_MEMINFO_DROPS] != self->drops;
    self->drops = mem[SK_MEMINFO_DROPS];
    return dropped ||
           (double)mem[SK_MEMINFO_RMEM_ALLOC] / mem[SK_MEMINFO_RCVBUF] > self->behind_fill;
}

static int fill(Receiver *self) {
    for (int i = 0; i < BATCH; i++) self->msgs[i].msg_hdr.msg_namelen = NAME_LEN;
    int n;
    Py_BEGIN_ALLOW_THREADS
    n = recvmmsg(self->fd, self->msgs, BATCH, MSG_DONTWAIT, NULL);
    Py_END_ALLOW_THREADS
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return 0;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    self->count = n;
    self->next = 0;
    /* Behind: a full batch, and the socket in danger (a burst that merely fills a
       batch endangers nobody). */
    self->full = n == BATCH && in_danger(self);
    return n;
}

PyDoc_STRVAR(step_doc,
"step(now, more) -> list | tuple | None\n\n"
"The next thing received, in arrival order: a list of rows (`row_type`) the express\n"
"lanes took (a run of them; empty when all it read was shed), or one datagram for\n"
"the Python path as `handed_type` (a tuple without one)\n"
"(payload, host, port, truncated, key, lane) -- `lane` is the sender's Lane,\n"
"made inactive, or None. None: nothing buffered and, with `more` false or the\n"
"socket empty, nothing received.");

static PyObject *Receiver_step(Receiver *self, PyObject *args) {
    double now;
    int more;
    if (!PyArg_ParseTuple(args, "dp", &now, &more)) return NULL;
    if (self->next >= self->count) {
        if (!more) Py_RETURN_NONE;
        int n = fill(self);
        if (n < 0) return NULL;
        if (n == 0) Py_RETURN_NONE;
        if (self->full) self->behind_until = now + self->hold;
    }
    if (self->now == NULL || PyFloat_AS_DOUBLE(self->now) != now) {
        Py_XSETREF(self->now, PyFloat_FromDouble(now));
        if (self->now == NULL) return NULL;
    }
    PyObject *run = NULL;
    while (self->next < self->count) {
        struct mmsghdr *msg = &self->msgs[self->next];
        Py_ssize_t len = msg->msg_len < DATAGRAM_MAX ? msg->msg_len : DATAGRAM_MAX;
        int truncated = (msg->msg_hdr.msg_flags & MSG_TRUNC) != 0;
        const char *data = self->bufs[self->next];
        PyObject *key = PyBytes_FromStringAndSize(self->names_buf[self->next],
                                                  msg->msg_hdr.msg_namelen);
        if (key == NULL) goto error;
        Lane *lane = (Lane *)PyDict_GetItemWithError(self->lanes, key);
        if (lane == NULL && PyErr_Occurred()) { Py_DECREF(key); goto error; }
        if (lane != NULL && (!PyObject_TypeCheck(lane, &LaneType) || !lane->active))
            lane = NULL;
        if (lane != NULL && !truncated && len > 0) {
            PyObject *row = take(self, lane, data, len, now);
            if (row == Py_None) {
                Py_DECREF(row);
                Py_DECREF(key);
                if (lane->shed++ == 0 && PyList_Append(self->shedding, (PyObject *)lane) < 0)
                    goto error;
                lane->last = now;
                self->datagrams++;
                self->bytes += len;
                self->next++;
                continue;
            }
            if (row != NULL) {
                Py_DECREF(key);
                if (run == NULL && (run = PyList_New(0)) == NULL) { Py_DECREF(row); goto error; }
                int rc = PyList_Append(run, row);
                Py_DECREF(row);
                if (rc < 0) goto error;
                lane->last = now;
                if (lane->fresh++ == 0 && PyList_Append(self->touched, (PyObject *)lane) < 0)
                    goto error;
                if (lane->batch++ == 0) {
                    lane->first = now;
                    if (PyList_Append(self->batched, (PyObject *)lane) < 0) goto error;
                }
                self->datagrams++;
                self->bytes += len;
                self->next++;
                continue;
            }
            if (PyErr_Occurred()) { Py_DECREF(key); goto error; }
        }
        if (run != NULL) { /* the run first; this datagram on the next step */
            Py_DECREF(key);
            return run;
        }
        PyObject *hp = host_port(key);
        if (hp == NULL) { Py_DECREF(key); goto error; }
        PyObject *payload = PyBytes_FromStringAndSize(data, len);
        if (payload == NULL) { Py_DECREF(hp); Py_DECREF(key); goto error; }
        if (lane != NULL) lane->active = 0;
        PyObject *out = self->handed_type != NULL
                            ? self->handed_type->tp_alloc(self->handed_type, 6)
                            : PyTuple_New(6);
        if (out == NULL) { Py_DECREF(payload); Py_DECREF(hp); Py_DECREF(key); return NULL; }
        PyObject *items[6] = {payload, PyTuple_GET_ITEM(hp, 0), PyTuple_GET_ITEM(hp, 1),
                              truncated ? Py_True : Py_False, key,
                              lane != NULL ? (PyObject *)lane : Py_None};
        for (int i = 0; i < 6; i++) {
            if (i != 0 && i != 4) Py_INCREF(items[i]); /* payload and key: references given */
            PyTuple_SET_ITEM(out, i, items[i]);
        }
        Py_DECREF(hp);
        self->datagrams++;
        self->bytes += len;
        self->next++;
        return out;
    }
    /* The buffer ended on a run; or it held only records shed: an empty run. */
    return run != NULL ? run : PyList_New(0);
error:
    Py_XDECREF(run);
    return NULL;
}

PyDoc_STRVAR(counts_doc, "counts() -> (datagrams, bytes) received since the last call");

static PyObject *Receiver_counts(Receiver *self, PyObject *Py_UNUSED(unused)) {
    PyObject *out = Py_BuildValue("(KK)", self->datagrams, self->bytes);
    self->datagrams = self->bytes = 0;
    return out;
}

PyDoc_STRVAR(touched_doc, "touched() -> [Lane]: lanes whose `fresh` went from 0 since the last call");

static PyObject *swap_list(PyObject **list) {
    PyObject *fresh = PyList_New(0);
    if (fresh == NULL) return NULL;
    PyObject *out = *list;
    *list = fresh;
    return out;
}

static PyObject *Receiver_touched(Receiver *self, PyObject *Py_UNUSED(unused)) {
    return swap_list(&self->touched);
}

PyDoc_STRVAR(batched_doc, "batched() -> [Lane]: lanes whose `batch` went from 0 since the last call");

static PyObject *Receiver_batched(Receiver *self, PyObject *Py_UNUSED(unused)) {
    return swap_list(&self->batched);
}

PyDoc_STRVAR(shedding_doc, "shedding() -> [Lane]: lanes whose `shed` went from 0 since the last call");

static PyObject *Receiver_shedding(Receiver *self, PyObject *Py_UNUSED(unused)) {
    return swap_list(&self->shedding);
}

static PyMemberDef Receiver_members[] = {
    {"rate", T_DOUBLE, offsetof(Receiver, rate), 0, "per-sender budget, records/s (0: none)"},
    {"burst", T_DOUBLE, offsetof(Receiver, burst), 0, "most of the budget a sender saves up"},
    {"ts_back", T_LONGLONG, offsetof(Receiver, ts_back), 0,
     "a newer seq this much (usec) before the newest is a reboot: the stream's rule"},
    {"window", T_LONGLONG, offsetof(Receiver, window), 0,
     "the longest forward gap a lane takes (the stream's WINDOW; 0: none)"},
    {"behind_fill", T_DOUBLE, offsetof(Receiver, behind_fill), 0,
     "a full recvmmsg is behind only with the queue past this share of the buffer"},
    {"noisy_hold", T_DOUBLE, offsetof(Receiver, noisy_hold), 0,
     "seconds a sender shed stays under its budget, behind or not"},
    {"hold", T_DOUBLE, offsetof(Receiver, hold), 0,
     "seconds the receiver counts as behind after a full recvmmsg"},
    {"behind_until", T_DOUBLE, offsetof(Receiver, behind_until), 0,
     "budgets apply until then (a full recvmmsg pushes it `hold` ahead)"},
    {NULL}};

static PyMethodDef Receiver_methods[] = {
    {"touched", (PyCFunction)Receiver_touched, METH_NOARGS, touched_doc},
    {"batched", (PyCFunction)Receiver_batched, METH_NOARGS, batched_doc},
    {"shedding", (PyCFunction)Receiver_shedding, METH_NOARGS, shedding_doc},
    {"step", (PyCFunction)Receiver_step, METH_VARARGS, step_doc},
    {"counts", (PyCFunction)Receiver_counts, METH_NOARGS, counts_doc},
    {NULL}};

static PyTypeObject ReceiverType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "netconsole.collector._lane.Receiver",
    .tp_basicsize = sizeof(Receiver),
    .tp_dealloc = (destructor)Receiver_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Receiver(fd, lanes, trigger, literals=(), *, row_type, gap_type=None, "
              "handed_type=None): recvmmsg on a non-blocking UDP socket, with the express "
              "lanes in `lanes` taking what they can, as `row_type` rows (forward gaps kept "
              "as `gap_type`), and handing the rest out as `handed_type`.",
    .tp_methods = Receiver_methods,
    .tp_members = Receiver_members,
    .tp_init = (initproc)Receiver_init,
    .tp_new = PyType_GenericNew,
};

/* -- module ------------------------------------------------------------------- */

static struct PyModuleDef lane_module = {
    PyModuleDef_HEAD_INIT, "netconsole.collector._lane",
    "The receiver's express lane in C (see collector/_express.py).", -1, NULL};

PyMODINIT_FUNC PyInit__lane(void) {
    if (PyType_Ready(&LaneType) < 0 || PyType_Ready(&ReceiverType) < 0) return NULL;
    s_extended = PyUnicode_InternFromString("extended");
    s_flag_none = PyUnicode_InternFromString("-");
    s_flag_cont = PyUnicode_InternFromString("c");
    s_flag_frag = PyUnicode_InternFromString("+");
    s_empty = PyUnicode_InternFromString("");
    if (!s_empty || !s_extended || !s_flag_none || !s_flag_cont || !s_flag_frag) return NULL;
    PyObject *m = PyModule_Create(&lane_module);
    if (m == NULL) return NULL;
    Py_INCREF(&LaneType);
    Py_INCREF(&ReceiverType);
    if (PyModule_AddObject(m, "Lane", (PyObject *)&LaneType) < 0 ||
        PyModule_AddObject(m, "Receiver", (PyObject *)&ReceiverType) < 0 ||
        PyModule_AddIntConstant(m, "DATAGRAM_MAX", DATAGRAM_MAX) < 0 ||
        PyModule_AddIntConstant(m, "MAX_DIGITS", MAX_DIGITS) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
