"""A local stand-in for Kaggle's API, so the real `kaggle` command can be tested offline.

With KAGGLE_API_ENVIRONMENT=LOCALHOST, kaggle 2.x (kagglesdk) POSTs JSON to
http://localhost/api/v1/<service>/<Method> (port 80). The stub answers each method the kit uses
with a minimal valid response, records every request, takes uploads by PUT on the `createUrl` it
hands out and serves kernel output files by GET. `refuse(method, message)` makes a method answer
the way Kaggle refuses it (the shape the client prints as "Kernel push error: ..." and the like).

Datasets: the stub keeps each dataset's files (the names the client started blob uploads for, by
the tokens CreateDataset / CreateDatasetVersion name) and serves them to ListDatasetFiles, paged;
`drop_files` names files the server silently leaves out (as a client that drops a failed upload
without a word, or a failed processing, would leave them out), `dataset_statuses` makes
GetDatasetStatus answer a sequence (popped until one is left, as `kernel_statuses`).

Kernels with a life of their own: with `on_push` set, each SaveKernel makes a `KernelRun` (the
pushed text, version) handed to the hook, which decides its statuses, final status, output files
and log (tests/test_ship_train.py runs the pushed training script for real in a thread); the
kernel's status and output calls then answer from its latest run, kernel by kernel.
"""
from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote

import pytest

USER = "kituser"
KEY = "0123456789abcdef0123456789abcdef"

# Methods whose refusal is a 200 answer with an error field (the client prints it and exits 0).
_SOFT_REFUSALS = {
    "SaveKernel": lambda msg: {"error": msg},
    "CreateDataset": lambda msg: {"status": "error", "error": msg},
    "CreateDatasetVersion": lambda msg: {"status": "error", "error": msg},
}


@dataclass
class Request:
    method: str            # HTTP verb
    path: str
    name: str              # API method ("SaveKernel"), or "upload" / "download"
    body: dict | None      # parsed JSON body of API calls
    raw: bytes


@dataclass
class KernelRun:
    """One pushed kernel version's life, for kernels with a `KaggleStub.on_push` hook: the
    statuses it answers in turn (popped until one is left; QUEUED then RUNNING by default), and
    once `final` is set (status, failure message) and the list is down to its last entry, that
    final status. Its output files and log are served for that kernel only."""
    slug: str
    version: int
    text: str
    statuses: list = field(default_factory=lambda: [("QUEUED", None), ("RUNNING", None)])
    final: tuple | None = None
    output_files: dict = field(default_factory=dict)   # relative name -> bytes
    log: str = ""

    def status(self) -> tuple:
        if len(self.statuses) > 1:
            return self.statuses.pop(0)
        return self.final or self.statuses[0]


@dataclass
class KaggleStub:
    base_url: str = ""
    requests: list[Request] = field(default_factory=list)
    refusals: dict = field(default_factory=dict)
    datasets: set = field(default_factory=set)          # "owner/slug" known to GetDatasetStatus
    kernel_statuses: list = field(default_factory=lambda: [("COMPLETE", None)])  # popped until one left
    output_files: dict = field(default_factory=dict)    # name -> bytes, for ListKernelSessionOutput
    kernel_log: str = ""
    uploads: dict = field(default_factory=dict)         # blob token -> bytes received by PUT
    versions: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)           # method -> fields merged into its 200 answer
    blob_names: dict = field(default_factory=dict)      # blob token -> file name given to StartBlobUpload
    dataset_files: dict = field(default_factory=dict)   # "owner/slug" -> [(name, size)] of its latest version
    drop_files: set = field(default_factory=set)        # names left out of datasets without a word
    dataset_statuses: dict = field(default_factory=dict)  # "owner/slug" -> [status names], popped until one left
    max_page_size: int | None = None                    # cap on ListDatasetFiles pages (tests paging)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # on_push(run: KernelRun) is called (under the lock: start a thread for long work) for each
    # SaveKernel; the kernel then answers status and output from its latest KernelRun.
    on_push: object = None
    runs: dict = field(default_factory=dict)            # kernel slug -> [KernelRun], one per version

    def refuse(self, method: str, message: str, http_status: int | None = None) -> None:
        """Make `method` refuse: as Kaggle's JSON error {code, message} with `http_status`, or, when
        None, the method's soft refusal (SaveKernel, CreateDataset...) or a 400."""
        self.refusals[method] = (message, http_status)

    def calls(self, name: str) -> list[dict]:
        """JSON bodies received for API method `name`, in order."""
        return [r.body for r in self.requests if r.name == name]

    def names(self) -> list[str]:
        return [r.name for r in self.requests]

    # ---- answers -------------------------------------------------------------------------
    def answer(self, name: str, body: dict) -> tuple[int, dict]:
        if name in self.refusals:
            message, status = self.refusals[name]
            if status is None and name in _SOFT_REFUSALS:
                return 200, _SOFT_REFUSALS[name](message)
            status = status or 400
            return status, {"code": status, "message": message}
        handler = getattr(self, "_" + name, None)
        if handler is None:
            return 404, {"code": 404, "message": f"stub: no handler for {name}"}
        status, answer = handler(body)
        return status, ({**answer, **self.extra.get(name, {})} if status == 200 else answer)

    def _blob(self) -> dict:
        token = f"blob-{len(self.requests)}"  # unique: one request per token
        return {"token": token, "createUrl": f"{self.base_url}/upload/{token}"}

    def latest_run(self, slug: str) -> "KernelRun | None":
        runs = self.runs.get(slug.rsplit("/", 1)[-1])
        return runs[-1] if runs else None

    def _SaveKernel(self, body):
        slug = body.get("slug", "")
        self.versions[slug] = self.versions.get(slug, 0) + 1
        if self.on_push is not None:
            run = KernelRun(slug.rsplit("/", 1)[-1], self.versions[slug], body.get("text", ""))
            self.runs.setdefault(run.slug, []).append(run)
            self.on_push(run)
        return 200, {"ref": f"/code/{slug}", "url": f"{self.base_url}/code/{slug}",
                     "versionNumber": self.versions[slug], "kernelId": 1}

    def _GetKernelSessionStatus(self, body):
        run = self.latest_run(str(body.get("kernelSlug", "")))
        if run is not None:
            status, message = run.status()
            return 200, {"status": status, **({"failureMessage": message} if message else {})}
        status, message = self.kernel_statuses[0]
        if len(self.kernel_statuses) > 1:
            self.kernel_statuses.pop(0)
        return 200, {"status": status, **({"failureMessage": message} if message else {})}

    def _ListKernelSessionOutput(self, body):
        run = self.latest_run(str(body.get("kernelSlug", "")))
        if run is not None:
            files = [{"fileName": n, "url": f"{self.base_url}/kfiles/{run.slug}/{run.version}/{quote(n)}"}
                     for n in sorted(run.output_files)]
            return 200, {"files": files, **({"log": run.log} if run.log else {})}
        files = [{"fileName": n, "url": f"{self.base_url}/files/{n}"} for n in self.output_files]
        return 200, {"files": files, **({"log": self.kernel_log} if self.kernel_log else {})}

    def _GetDatasetStatus(self, body):
        ref = f"{body.get('ownerSlug')}/{body.get('datasetSlug')}"
        if ref in self.datasets:
            statuses = self.dataset_statuses.get(ref) or ["READY"]
            status = statuses[0]
            if len(statuses) > 1:
                statuses.pop(0)
            return 200, {"status": status}
        return 404, {"code": 404, "message": f"Dataset {ref} not found"}

    def _ListDatasetFiles(self, body):
        ref = f"{body.get('ownerSlug')}/{body.get('datasetSlug')}"
        if ref not in self.datasets:
            return 404, {"code": 404, "message": f"Dataset {ref} not found"}
        files = self.dataset_files.get(ref, [])
        size = int(body.get("pageSize") or 20)
        size = min(size, self.max_page_size) if self.max_page_size else size
        start = int(body.get("pageToken") or 0)
        page = [{"ref": f"{ref}/{n}", "name": n, "totalBytes": b, "creationDate": "2024-01-02T03:04:05Z"}
                for n, b in files[start:start + size]]
        more = start + size < len(files)
        return 200, {"datasetFiles": page, **({"nextPageToken": str(start + size)} if more else {})}

    def _dataset_version_files(self, ref: str, files: list) -> None:
        kept = []
        for f in files or []:
            name = self.blob_names.get(f.get("token"))
            if name is not None and name not in self.drop_files:
                kept.append((name, len(self.uploads.get(f.get("token"), b""))))
        self.dataset_files[ref] = kept

    def _StartBlobUpload(self, body):
        blob = self._blob()
        self.blob_names[blob["token"]] = body.get("name")
        return 200, blob

    def _StartSubmissionUpload(self, body):
        return 200, self._blob()

    def _CreateDataset(self, body):
        ref = f"{body.get('ownerSlug')}/{body.get('slug')}"
        self.datasets.add(ref)
        self._dataset_version_files(ref, body.get("files"))
        return 200, {"ref": ref, "url": f"{self.base_url}/datasets/{ref}", "status": "ok"}

    def _CreateDatasetVersion(self, body):
        ref = f"{body.get('ownerSlug')}/{body.get('datasetSlug')}"
        self._dataset_version_files(ref, (body.get("body") or {}).get("files"))
        return 200, {"ref": ref, "url": f"{self.base_url}/datasets/{ref}", "status": "ok"}

    def _CreateSubmission(self, body):
        return 200, {"message": "Successfully submitted to the competition", "ref": 101}

    def _CreateCodeSubmission(self, body):
        return 200, {"message": "Your submission was successfully saved", "ref": 102}

    def _GetSubmissionLimits(self, body):
        return 200, {}


def _handler(stub: KaggleStub):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep pytest output clean
            pass

        def _read(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _send(self, status: int, payload: bytes, ctype: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self):
            raw = self._read()
            name = self.path.rstrip("/").rsplit("/", 1)[-1]
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = None
            with stub.lock:
                stub.requests.append(Request("POST", self.path, name, body, raw))
                if not self.path.startswith("/api/v1/") or body is None:
                    status, answer = 400, {"code": 400, "message": "stub: not an API call"}
                else:
                    status, answer = stub.answer(name, body)
            self._send(status, json.dumps(answer).encode())

        def do_PUT(self):
            raw = self._read()
            with stub.lock:
                stub.requests.append(Request("PUT", self.path, "upload", None, raw))
                if self.path.startswith("/upload/"):
                    stub.uploads[self.path[len("/upload/"):]] = raw
                    status = 200
                else:
                    status = 404
            self._send(status, b"{}")

        def do_GET(self):
            name = self.path[len("/files/"):] if self.path.startswith("/files/") else None
            with stub.lock:
                stub.requests.append(Request("GET", self.path, "download", None, b""))
                data = stub.output_files.get(name) if name else None
                if self.path.startswith("/kfiles/"):                 # a KernelRun's output file
                    slug, version, rest = self.path[len("/kfiles/"):].split("/", 2)
                    run = next((r for r in stub.runs.get(slug, []) if str(r.version) == version), None)
                    data = run.output_files.get(unquote(rest)) if run else None
            if data is None:
                self._send(404, b"not found", "text/plain")
            else:
                self._send(200, data, "application/octet-stream")

    return Handler


@contextlib.contextmanager
def serving():
    """The stub serving on 127.0.0.1:80, where the client's LOCALHOST environment points; skipped
    (with the reason) where port 80 cannot be bound or the kaggle client is not installed."""
    if importlib.util.find_spec("kaggle") is None:
        pytest.skip('the kaggle client is not installed (pip install -e ".[kaggle]")')
    stub = KaggleStub()
    try:
        server = ThreadingHTTPServer(("127.0.0.1", 80), _handler(stub))
    except OSError as e:
        pytest.skip(f"cannot serve the Kaggle API stub on 127.0.0.1:80 ({e})")
    server.daemon_threads = True
    stub.base_url = "http://localhost"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def kaggle_stub():
    with serving() as stub:
        yield stub


def clean_kaggle_env(monkeypatch, tmp_path) -> tuple[str, str]:
    """No credentials at all: HOME, KAGGLE_CONFIG_DIR and TMPDIR (where the client keeps upload
    resume state) in tmp_path, every KAGGLE_* variable removed. Returns (home, config_dir)."""
    for key in list(os.environ):
        if key.startswith("KAGGLE_") or key in ("XDG_CONFIG_HOME", "VERBOSE", "VERBOSE_OUTPUT"):
            monkeypatch.delenv(key)
    home, config, tmp = (tmp_path / "home", tmp_path / "kaggle-config", tmp_path / "tmp")
    for d in (home, config, tmp):
        d.mkdir(exist_ok=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(config))
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "LOCALHOST")
    no_proxy = "localhost,127.0.0.1"
    monkeypatch.setenv("NO_PROXY", no_proxy)
    monkeypatch.setenv("no_proxy", no_proxy)
    return str(home), str(config)


def fake_credentials(monkeypatch, folder) -> str:
    """The client pointed at the stub with a fake kaggle.json (user `kituser`) under `folder`;
    KERAS_HOME and everything else left as they are. Returns the config dir."""
    _, config = clean_kaggle_env(monkeypatch, folder)
    path = os.path.join(config, "kaggle.json")
    with open(path, "w") as f:
        json.dump({"username": USER, "key": KEY}, f)
    os.chmod(path, 0o600)  # else the client prints a warning about readable keys
    return config


@pytest.fixture
def kaggle_env(monkeypatch, tmp_path):
    yield fake_credentials(monkeypatch, tmp_path)
