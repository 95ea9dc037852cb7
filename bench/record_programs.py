"""Record real programs with `memalert record`, time-compressed, as labelled traces.

Each program really runs here (Redis, memcached, the JVM, Node.js, CPython) under a
small load generator, and `memalert record` samples its process tree every 0.25 s.
The timestamps are then rewritten 15 s apart, so one real second stands for one
minute of trace time (60x): a 16-hour trace takes 16 minutes to record. Memory
behaviour is real; only the clock is compressed, which makes leaks and warm-ups
60x slower per trace hour than per real hour, and GC cycles 60x longer.

Half the programs are bounded (caches that warm up to a cap, a GC'd map), half
leak (per request, in closures, slowly under a large heap, only during batches).
The traces and their labels go to bench/real-traces/ (labels.json in the format of
the shared sets: leak, start = onset, family, source = "recorded").

    python bench/record_programs.py [--only NAME ...] [--out bench/real-traces]

Needs redis-server, memcached, java and node on PATH (Debian: redis-server,
memcached, default-jre-headless or openjdk, nodejs); a program whose binary is
missing is skipped with a message.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE_SECONDS = 0.25
TRACE_STEP_SECONDS = 15.0
QUIET = subprocess.DEVNULL
TRACE_START = 1_767_225_600.0  # 2026-01-01T00:00:00Z: traces get fixed, readable times

# Load generators and programs, each a Python or Node/Java source run as a child.
_RESP_LOAD = """
import random, socket, sys, time
port, rate, size = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
deadline = time.time() + 30
while True:
    try:
        s = socket.create_connection(("127.0.0.1", port)); break
    except OSError:
        if time.time() > deadline: raise
        time.sleep(0.1)
value = b"v" * size
f = s.makefile("rb")
mode = sys.argv[4]
while True:
    started = time.time()
    for _ in range(int(rate / 10)):
        key = b"k%d" % random.randrange(10_000_000)
        if mode == "redis":
            s.sendall(b"*3\\r\\n$3\\r\\nSET\\r\\n$%d\\r\\n%s\\r\\n$%d\\r\\n%s\\r\\n"
                      % (len(key), key, len(value), value))
        else:
            s.sendall(b"set %s 0 0 %d\\r\\n%s\\r\\n" % (key, len(value), value))
        f.readline()
    time.sleep(max(0.0, 0.1 - (time.time() - started)))
"""

_PY_LRU = """
import functools, random, time
@functools.lru_cache(maxsize=25_000)
def page(key):
    return bytes(2048) + str(key).encode()
while True:
    started = time.time()
    for _ in range(40):
        page(int(random.paretovariate(0.6)) % 5_000_000)
    time.sleep(max(0.0, 0.01 - (time.time() - started)))
"""

_PY_TTL = """
import os, time
sessions = {}
ttl = 90.0  # 1.5 trace hours
n = 0
while True:
    now = time.time()
    for _ in range(6):
        sessions[n] = (now + ttl, os.urandom(4096)); n += 1
    if n % 600 == 0:
        for key in [k for k, (expiry, _) in sessions.items() if expiry < now]:
            del sessions[key]
    time.sleep(0.01)
"""

_PY_SQLITE_FILL = """
import os, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)")
for chunk in range(60):
    db.executemany("INSERT INTO t VALUES (?, ?)",
                   ((chunk * 1000 + i, os.urandom(2000)) for i in range(1000)))
db.commit()
"""

_PY_SQLITE = """
import random, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1])
db.execute("PRAGMA cache_size = -48000")  # a 48 MB page cache, filled by random reads
while True:
    for _ in range(2):
        db.execute("SELECT body FROM t WHERE id = ?", (random.randrange(60_000),)).fetchone()
    time.sleep(0.01)
"""

_NODE_BOUNDED = """
const map = new Map();
let n = 0;
setInterval(() => {
  for (let i = 0; i < 40; i++) {
    map.set(n++, 'x'.repeat(1024) + n);
    if (map.size > 60000) map.delete(map.keys().next().value);
  }
}, 10);
"""

_JAVA_LRU = """
import java.util.*;
public class Lru {
  public static void main(String[] a) throws Exception {
    final int max = 40000;
    Map<Integer, byte[]> m = new LinkedHashMap<>(16, 0.75f, true) {
      protected boolean removeEldestEntry(Map.Entry<Integer, byte[]> e) { return size() > max; }
    };
    Random r = new Random(1);
    while (true) {
      for (int i = 0; i < 60; i++) m.put(r.nextInt(2_000_000), new byte[1024]);
      Thread.sleep(10);
    }
  }
}
"""

_PY_HTTP_LEAK = """
import http.server, sys, threading
kept = []
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        kept.append(self.path.encode() * 64 + bytes(2048))  # the per-request leak
        body = b"ok"
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
server.serve_forever()
"""

_HTTP_LOAD = """
import sys, time, urllib.request
port, rate = int(sys.argv[1]), float(sys.argv[2])
deadline = time.time() + 30
n = 0
while True:
    started = time.time()
    for _ in range(int(rate / 10)):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/item/{n}", timeout=5).read()
        except OSError:
            if time.time() > deadline: raise
            time.sleep(0.1)
        n += 1
    time.sleep(max(0.0, 0.1 - (time.time() - started)))
"""

_NODE_CLOSURE_LEAK = """
const listeners = [];
function handle(request) {
  const scratch = Buffer.alloc(4096, request % 251);
  listeners.push(() => scratch.length);  // the closure keeps every scratch buffer
}
let n = 0;
setInterval(() => handle(n++), 10);
"""

_PY_SLOW_LEAK = """
import time
ballast = [bytearray(1 << 20) for _ in range(400)]  # a large, busy process
for block in ballast:
    block[::4096] = b"x" * len(block[::4096])
leak = []
churn = []
while True:
    leak.append(bytes(700))  # ~70 KB/s real: ~4 MB per trace hour
    churn = [bytes(4096) for _ in range(200)]
    time.sleep(0.01)
"""

_PY_BATCH_LEAK = """
import time
kept = []
while True:
    time.sleep(20)  # idle between batches (20 trace minutes)
    work = [bytearray(1 << 20) for _ in range(120)]  # the batch's working set
    for block in work:
        block[::4096] = b"x" * len(block[::4096])
    # What each batch forgets to free, written so that it is resident (bytes(n) of
    # zeros would be untouched calloc pages, invisible to RSS).
    kept.extend(b"k" * (1 << 20) for _ in range(6))
    time.sleep(5)
    del work
"""


Child = subprocess.Popen[bytes]


@dataclass(frozen=True, kw_only=True, slots=True)
class Program:
    name: str
    family: str
    leak: bool
    hours: float
    needs: tuple[str, ...]
    note: str

    def start(
        self, work: Path, port: int
    ) -> tuple[subprocess.Popen[bytes], list[subprocess.Popen[bytes]]]:
        """The program (whose tree is recorded) and its load generators."""
        py = sys.executable
        if self.name == "redis-maxmemory-lru":
            main = subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(port),
                    "--maxmemory",
                    "48mb",
                    "--maxmemory-policy",
                    "allkeys-lru",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ],
                stdout=QUIET,
                stderr=QUIET,
            )
            return main, [_py(work, _RESP_LOAD, str(port), "600", "512", "redis")]
        if self.name == "memcached-m48":
            main = subprocess.Popen(
                ["memcached", "-u", "nobody", "-p", str(port), "-m", "48", "-U", "0"],
                stdout=QUIET,
                stderr=QUIET,
            )
            return main, [_py(work, _RESP_LOAD, str(port), "600", "512", "memcached")]
        if self.name == "java-linkedhashmap-lru":
            (work / "Lru.java").write_text(_JAVA_LRU)
            subprocess.run(["javac", "Lru.java"], cwd=work, check=True, stdout=QUIET, stderr=QUIET)
            main = subprocess.Popen(
                ["java", "-Xmx256m", "-cp", str(work), "Lru"], stdout=QUIET, stderr=QUIET
            )
            return main, []
        if self.name == "python-sqlite-page-cache":
            database = work / "pages.db"
            subprocess.run(
                [py, "-c", _PY_SQLITE_FILL, str(database)], check=True, stdout=QUIET, stderr=QUIET
            )
            return _py(work, _PY_SQLITE, str(database)), []
        if self.name == "node-bounded-map":
            return _node(work, _NODE_BOUNDED), []
        if self.name == "node-closure-leak":
            return _node(work, _NODE_CLOSURE_LEAK), []
        if self.name == "python-http-request-leak":
            main = _py(work, _PY_HTTP_LEAK, str(port))
            return main, [_py(work, _HTTP_LOAD, str(port), "60")]
        sources: dict[str, tuple[str, ...]] = {
            "python-lru-cache": (_PY_LRU,),
            "python-ttl-sessions": (_PY_TTL,),
            "python-slow-leak-large-heap": (_PY_SLOW_LEAK,),
            "python-batch-job-leak": (_PY_BATCH_LEAK,),
        }
        source, *args = sources[self.name]
        return _py(work, source, *args), []


def _py(work: Path, source: str, *args: str) -> Child:
    script = work / f"prog{len(list(work.iterdir()))}.py"
    script.write_text(source)
    return subprocess.Popen([sys.executable, str(script), *args], stdout=QUIET, stderr=QUIET)


def _node(work: Path, source: str) -> Child:
    script = work / "prog.js"
    script.write_text(source)
    return subprocess.Popen(
        ["node", str(script)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


PROGRAMS = (
    Program(
        name="redis-maxmemory-lru",
        family="real_cache_cap",
        leak=False,
        hours=14,
        needs=("redis-server",),
        note="redis-server maxmemory 48mb allkeys-lru, random SETs",
    ),
    Program(
        name="memcached-m48",
        family="real_cache_cap",
        leak=False,
        hours=14,
        needs=("memcached",),
        note="memcached -m 48, random sets",
    ),
    Program(
        name="python-lru-cache",
        family="real_cache_lru",
        leak=False,
        hours=14,
        needs=(),
        note="functools.lru_cache(maxsize=25000), Pareto keys",
    ),
    Program(
        name="python-ttl-sessions",
        family="real_cache_ttl",
        leak=False,
        hours=14,
        needs=(),
        note="session dict, 90 s real TTL (1.5 trace hours), purged",
    ),
    Program(
        name="python-sqlite-page-cache",
        family="real_cache_pages",
        leak=False,
        hours=14,
        needs=(),
        note="sqlite3 cache_size 48 MB, random reads of a 120 MB table",
    ),
    Program(
        name="node-bounded-map",
        family="real_runtime_bounded",
        leak=False,
        hours=14,
        needs=("node",),
        note="Node.js Map capped at 60,000 entries",
    ),
    Program(
        name="java-linkedhashmap-lru",
        family="real_runtime_bounded",
        leak=False,
        hours=14,
        needs=("java", "javac"),
        note="JVM LinkedHashMap LRU of 40,000 x 1 KiB, -Xmx256m",
    ),
    Program(
        name="python-http-request-leak",
        family="real_request_leak",
        leak=True,
        hours=14,
        needs=(),
        note="ThreadingHTTPServer keeping ~2 KiB per request at 60 req/s",
    ),
    Program(
        name="node-closure-leak",
        family="real_closure_leak",
        leak=True,
        hours=14,
        needs=("node",),
        note="closures retaining a 4 KiB buffer, 100 per second",
    ),
    Program(
        name="python-slow-leak-large-heap",
        family="real_slow_leak",
        leak=True,
        hours=20,
        needs=(),
        note="400 MiB ballast, ~70 KB/s real leak (~4 MB per trace hour)",
    ),
    Program(
        name="python-batch-job-leak",
        family="real_batch_leak",
        leak=True,
        hours=14,
        needs=(),
        note="120 MiB batch every 25 s real, 6 MiB of it kept each time",
    ),
)


def record(program: Program, out_dir: Path, port: int) -> dict[str, object] | None:
    missing = [binary for binary in program.needs if shutil.which(binary) is None]
    if missing:
        print(f"{program.name}: skipped, {', '.join(missing)} not on PATH", flush=True)
        return None
    with tempfile.TemporaryDirectory(prefix=f"rec-{program.name}-") as tmp:
        work = Path(tmp)
        (work / "src").mkdir()
        main, loads = program.start(work / "src", port)
        try:
            (work / "app.pid").write_text(f"{main.pid}\n")
            rules = work / "record.yaml"
            rules.write_text(
                f"version: 1\ninterval: {int(SAMPLE_SECONDS * 1000)}ms\ntargets:\n"
                f"  - name: {program.name}\n    pidfile: {work / 'app.pid'}\n    children: true\n"
            )
            raw = work / "raw.jsonl"
            real_seconds = program.hours * 3600 * SAMPLE_SECONDS / TRACE_STEP_SECONDS
            subprocess.run(
                [
                    "memalert",
                    "record",
                    "--rules",
                    str(rules),
                    "--out",
                    str(raw),
                    "--duration",
                    f"{int(real_seconds)}s",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        finally:
            for child in (*loads, main):
                child.kill()
                child.wait(timeout=30)
        lines = [json.loads(line) for line in raw.read_text().splitlines() if line.strip()]
    trace = out_dir / f"{program.name}.jsonl"
    with trace.open("w") as out:
        for index, line in enumerate(lines):
            line["ts"] = TRACE_START + index * TRACE_STEP_SECONDS
            out.write(json.dumps(line, separators=(", ", ": ")) + "\n")
    print(f"{program.name}: {len(lines)} samples -> {trace}", flush=True)
    return {
        "family": program.family,
        "kind": program.family,
        "leak": program.leak,
        "hours": program.hours,
        "source": "recorded",
        "note": program.note + f"; sampled every {SAMPLE_SECONDS} s, rewritten 15 s apart (60x)",
        # The leaking programs leak from their first request on.
        "start": TRACE_START if program.leak else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, help="program names")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "real-traces")
    parser.add_argument("--hours", type=float, default=None, help="trace hours (smoke runs)")
    args = parser.parse_args()
    chosen = [
        p if args.hours is None else replace(p, hours=args.hours)
        for p in PROGRAMS
        if args.only is None or p.name in args.only
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    labels_path = args.out / "labels.json"
    labels = json.loads(labels_path.read_text()) if labels_path.exists() else {}
    started = time.time()
    with ThreadPoolExecutor(max_workers=len(chosen) or 1) as pool:
        results = pool.map(
            lambda ip: record(ip[1], args.out, 21000 + ip[0]), list(enumerate(chosen))
        )
        for program, label in zip(chosen, results, strict=True):
            if label is not None:
                labels[program.name] = label
    labels_path.write_text(json.dumps(dict(sorted(labels.items())), indent=1) + "\n")
    print(f"recorded {len(chosen)} programs in {time.time() - started:.0f} s -> {labels_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
