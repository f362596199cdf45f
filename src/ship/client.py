"""Push kernels and datasets, follow kernels and submit, through the real `kaggle` command.

Why a subprocess and never `import kaggle`: the package authenticates when it is imported (and
exits the process when no credentials are found), and its client prints most refusals
("Kernel push error: ...") and still exits 0. This module runs the command, turns every failure,
refusal included, into a `KitError` naming what was attempted, and parses the few lines the kit
needs (pushed version, kernel status, a dataset's status and file list). Written against kaggle
2.2.5; the 1.x status wording is also understood. Dataset uploads run without `-q` (a quiet client
may drop a file whose upload failed without a word) and are then checked file by file against
what Kaggle lists (`verify_dataset`).

Credentials are whatever the client accepts; they are only checked for presence, never read out,
printed or logged.
"""
from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from ..kit.errors import KitError

INSTALL_HINT = 'pip install -e ".[kaggle]"'
KERNEL_METADATA_FILE = "kernel-metadata.json"
DATASET_METADATA_FILE = "dataset-metadata.json"
TERMINAL_STATUSES = ("complete", "error", "cancel_acknowledged")

# Lines the client prints while exiting 0 although the request was refused or only half done.
_REFUSALS = re.compile(
    r"^(Kernel push error: .*"
    r"|Dataset creation error: .*"
    r"|Dataset version creation error: .*"
    r"|The following are not valid \w+ sources .*"
    r"|Upload unsuccessful: .*"
    r"|Could not submit to competition.*)$",
    re.M,
)
_AUTH_HELP = "Authentication required to call the Kaggle API."
# Verbose mode prints request headers, Authorization included: never let it reach our output.
_DROPPED_ENV = ("VERBOSE", "VERBOSE_OUTPUT")


# ---- credentials -----------------------------------------------------------------------------

def _config_dir() -> Path:
    """The folder the client reads kaggle.json from (same rule as kaggle 2.x)."""
    if os.environ.get("KAGGLE_CONFIG_DIR"):
        return Path(os.environ["KAGGLE_CONFIG_DIR"])
    home_dir = Path.home() / ".kaggle"
    if sys.platform.startswith("linux") and not home_dir.exists():
        return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "kaggle"
    return home_dir


def _kaggle_json() -> dict:
    try:
        data = json.loads((_config_dir() / "kaggle.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _nonempty_file(path: Path) -> bool:
    try:
        return path.is_file() and bool(path.read_text().strip())
    except OSError:
        return False


def credentials_problem() -> str | None:
    """One line saying no credentials can be found, else None: checked before running the client,
    whose own answer is a 20-line help text and exit code 1."""
    env = os.environ
    home = Path.home() / ".kaggle"
    if env.get("KAGGLE_API_TOKEN"):
        return None
    if env.get("KAGGLE_KERNEL_RUN_TYPE") and env.get("KAGGLE_API_V1_TOKEN"):
        return None
    if _nonempty_file(home / "access_token") or _nonempty_file(home / "access_token.txt"):
        return None
    stored = _kaggle_json()
    if (env.get("KAGGLE_USERNAME") or stored.get("username")) and (env.get("KAGGLE_KEY") or stored.get("key")):
        return None
    try:
        if json.loads((home / "credentials.json").read_text()).get("refresh_token"):  # `kaggle auth login`
            return None
    except (OSError, ValueError, AttributeError):
        pass
    return (f"no Kaggle credentials found: set KAGGLE_USERNAME and KAGGLE_KEY, put kaggle.json in "
            f"{_config_dir()}, or set KAGGLE_API_TOKEN (or save the token to ~/.kaggle/access_token)")


def configured_user() -> str | None:
    """The Kaggle user name the client will use (KAGGLE_USERNAME, else kaggle.json): the default
    owner of kernels and datasets. None when only a token is configured."""
    user = os.environ.get("KAGGLE_USERNAME") or _kaggle_json().get("username")
    return str(user) if user else None


# ---- running the client ----------------------------------------------------------------------

def _kaggle_command() -> list[str]:
    """`python -m kaggle` of this interpreter when the package is here (it has a __main__), else a
    `kaggle` on PATH; find_spec does not import the package, so nothing authenticates here."""
    if importlib.util.find_spec("kaggle") is not None:
        return [sys.executable, "-m", "kaggle"]
    found = shutil.which("kaggle")
    if found:
        return [found]
    raise KitError(f"the Kaggle client is not installed: {INSTALL_HINT}")


def _detail(out: str, err: str) -> str:
    """The client's own explanation, shortened to what a user needs."""
    if _AUTH_HELP in out or _AUTH_HELP in err:
        return "Kaggle refused the credentials (not signed in or key revoked); check your Kaggle API token"
    refusal = _REFUSALS.search(out)
    if refusal:
        return refusal.group(0).strip()
    for text in (err, out):
        # The message is the first paragraph; the client's generic hints follow a blank line.
        first = re.split(r"\n\s*\n", text.strip(), maxsplit=1)[0]
        kept = [ln.strip() for ln in first.splitlines() if ln.strip() and not re.search(r"\d%\|", ln)]  # no tqdm
        if kept:
            return " | ".join(kept[:4])
    return "no message"


def run_kaggle(args: list[str], what: str, timeout: float = 600) -> str:
    """Run `kaggle <args>` and return its stdout; raise KitError (exit code 1) naming `what` when
    it exits non-zero or prints a refusal while exiting 0."""
    problem = credentials_problem()
    if problem:
        raise KitError(f"{what}: {problem}")
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
    cmd = _kaggle_command() + ["--no-warn"] + [str(a) for a in args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise KitError(f"{what}: the kaggle command did not answer within {timeout:.0f} s", exit_code=1)
    if "ModuleNotFoundError" in proc.stderr and "Traceback" in proc.stderr:
        missing = proc.stderr.strip().splitlines()[-1]
        raise KitError(f"{what}: the Kaggle client cannot start ({missing}): {INSTALL_HINT}")
    if proc.returncode != 0 or _REFUSALS.search(proc.stdout):
        raise KitError(f"{what} failed: {_detail(proc.stdout, proc.stderr)}", exit_code=1)
    return proc.stdout


# ---- metadata --------------------------------------------------------------------------------

def title_slug(title: str) -> str:
    """The slug Kaggle derives from a title (python-slugify's default rule, used by the client and
    the site), for the plain-ASCII titles the kit accepts."""
    s = title.replace("'", "-").lower()
    s = re.sub(r"(?<=\d),(?=\d)", "", s)
    s = re.sub(r"[^-a-z0-9]+", "-", s)
    return re.sub(r"-{2,}", "-", s).strip("-")


def _split_ref(ref: str, kind: str) -> tuple[str, str]:
    parts = ref.split("/")
    if len(parts) != 2 or not all(parts):
        raise KitError(f"{kind} id {ref!r} must read OWNER/SLUG")
    return parts[0], parts[1]


def check_kernel_metadata(meta: dict) -> None:
    """Refuse what Kaggle would refuse or silently rename: a new kernel's URL comes from its title,
    so a title whose slug differs from the id pushes to a kernel other than the one we follow."""
    title, ref = str(meta.get("title") or ""), str(meta.get("id") or "")
    _, slug = _split_ref(ref, "kernel")
    if len(title) < 5:
        raise KitError(f"kernel title {title!r} is too short: Kaggle needs at least 5 characters")
    if not title.isascii() or "&" in title:
        raise KitError(f"kernel title {title!r}: use plain ASCII without '&' (the URL slug is derived from it)")
    if title_slug(title) != slug.lower():
        raise KitError(f"kernel title {title!r} gives the slug {title_slug(title)!r}, not {slug!r} of id {ref!r}: "
                       "Kaggle names the kernel after its title")
    for source in meta.get("dataset_sources", []):
        _split_ref(source, "dataset source")


def kernel_metadata(owner: str, slug: str, title: str, code_file: str, competition: str,
                    dataset_sources: list[str], enable_gpu: bool) -> dict:
    """kernel-metadata.json for a private script kernel with internet off (a code competition
    refuses internet; the client would default it to on) and the original docker image pinned."""
    meta = {
        "id": f"{owner}/{slug}",
        "title": title,
        "code_file": code_file,
        "language": "python",
        "kernel_type": "script",
        "is_private": True,
        "enable_gpu": bool(enable_gpu),
        "enable_internet": False,
        "dataset_sources": list(dataset_sources),
        "competition_sources": [competition],
        "kernel_sources": [],
        "docker_image_pinning_type": "original",
    }
    check_kernel_metadata(meta)
    return meta


def dataset_metadata(owner: str, slug: str, title: str, license_name: str = "CC0-1.0") -> dict:
    """dataset-metadata.json; slug and title lengths are checked here, as the client would only
    refuse them after starting."""
    for name, value in (("slug", slug), ("title", title)):
        if not 6 <= len(value) <= 50:
            raise KitError(f"dataset {name} {value!r} must be 6 to 50 characters long")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]*", slug):
        raise KitError(f"dataset slug {slug!r}: use letters, digits and '-'")
    return {"id": f"{owner}/{slug}", "title": title, "licenses": [{"name": license_name}]}


def write_json(folder: str | os.PathLike, name: str, data: dict) -> Path:
    """Write a metadata file into `folder` (created if missing)."""
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


# ---- kernels ---------------------------------------------------------------------------------

def push_kernel(folder: str | os.PathLike) -> int:
    """Push the kernel in `folder` (kernel-metadata.json + code file) and start its run; return the
    new version number, which a code-competition submission names. A data source Kaggle could not
    attach is an error too: the run would fail without it."""
    meta_path = Path(folder) / KERNEL_METADATA_FILE
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as e:
        raise KitError(f"cannot read {meta_path}: {e}")
    check_kernel_metadata(meta)
    out = run_kaggle(["kernels", "push", "-p", str(folder)], f"kernel push of {meta['id']}")
    found = re.search(r"Kernel version (\d+) successfully pushed", out)
    if not found:
        raise KitError(f"kernel push of {meta['id']}: the client reported no version number: {out.strip()}",
                       exit_code=1)
    return int(found.group(1))


def parse_kernel_status(out: str) -> tuple[str, str | None]:
    """('complete' | 'error' | 'running' | 'queued' | ..., failure message or None) from the
    output of `kaggle kernels status` (2.x prints "KernelWorkerStatus.ERROR", 1.x "error")."""
    found = re.search(r'has status "(?:KernelWorkerStatus\.)?([A-Za-z_]+)"', out)
    if not found:
        raise KitError(f"unexpected answer from `kaggle kernels status`: {out.strip()[:200]}", exit_code=1)
    failure = re.search(r'^Failure message: "(.*)"\s*$', out, re.M | re.S)
    return found.group(1).lower(), (failure.group(1) if failure else None)


def _kernel_ref(slug: str, version: int | None) -> str:
    """OWNER/SLUG, or OWNER/SLUG/VERSION: the client's way of naming one version."""
    return f"{slug}/{int(version)}" if version is not None else slug


def kernel_status(slug: str, version: int | None = None) -> tuple[str, str | None]:
    """Status word and failure message of the run of kernel OWNER/SLUG (its latest, or of
    version `version`)."""
    ref = _kernel_ref(slug, version)
    what = f"status of kernel {slug}" + (f" version {version}" if version is not None else "")
    return parse_kernel_status(run_kaggle(["kernels", "status", ref], what, 120))


def wait_kernel(slug: str, poll_s: float = 30, timeout_s: float = 4 * 3600,
                on_status: Callable[[str], None] | None = None) -> tuple[str, str | None]:
    """Poll until the kernel's run ends; return its final (status, failure message). The caller
    decides what an error means (its log is still worth downloading)."""
    deadline = time.monotonic() + timeout_s
    last = None
    while True:
        status, message = kernel_status(slug)
        if on_status and status != last:
            on_status(status)
        last = status
        if status in TERMINAL_STATUSES:
            return status, message
        if time.monotonic() + poll_s > deadline:
            raise KitError(f"kernel {slug} still {status!r} after {timeout_s:.0f} s", exit_code=1)
        time.sleep(poll_s)


def kernel_output(slug: str, dest: str | os.PathLike, version: int | None = None) -> list[str]:
    """Download the output files and the log of the kernel's latest run (or of version
    `version`) into `dest`; return their paths (the log is `<slug>.log`)."""
    what = f"output of kernel {slug}" + (f" version {version}" if version is not None else "")
    out = run_kaggle(["kernels", "output", _kernel_ref(slug, version), "-p", str(dest), "--force"], what)
    return re.findall(r"^(?:Output file|Kernel log) downloaded to (.+?)\s*$", out, re.M)


# ---- datasets --------------------------------------------------------------------------------

def _dataset_ref(folder: str | os.PathLike) -> str:
    path = Path(folder) / DATASET_METADATA_FILE
    try:
        return str(json.loads(path.read_text())["id"])
    except (OSError, ValueError, KeyError) as e:
        raise KitError(f"cannot read the dataset id from {path}: {e}")


def dataset_create(folder: str | os.PathLike, public: bool = False, dir_mode: str = "zip") -> str:
    """Create a (private) dataset from `folder` (dataset-metadata.json + files; sub-folders go up
    zipped, Kaggle unpacks them); return the client's output. Not `-q`: a quiet client may drop a
    failed file without a word; a refusal or "Upload unsuccessful" line in its output raises.
    What Kaggle actually holds is checked by `verify_dataset`."""
    ref = _dataset_ref(folder)
    args = ["datasets", "create", "-p", str(folder), "--dir-mode", dir_mode] + (["--public"] if public else [])
    return run_kaggle(args, f"dataset create of {ref}", 3600).strip()


def dataset_version(folder: str | os.PathLike, message: str, dir_mode: str = "zip") -> str:
    """Upload `folder` as a new version of its dataset; return the client's output (not `-q`, as
    `dataset_create`)."""
    ref = _dataset_ref(folder)
    args = ["datasets", "version", "-p", str(folder), "-m", message, "--dir-mode", dir_mode]
    return run_kaggle(args, f"new version of dataset {ref}", 3600).strip()


# Statuses `kaggle datasets status` prints: 2.x the DatabundleVersionStatus name in lower case
# ("ready", "failed", "blobs_received", ...), 1.x "ready" / "pending" / "error".
DATASET_READY = ("ready",)
DATASET_FAILED = ("failed", "error", "deleted")
_METADATA_FILES = (DATASET_METADATA_FILE, "datapackage.json", KERNEL_METADATA_FILE)


def dataset_status(ref: str) -> str:
    """The processing status of dataset OWNER/SLUG's current version, lower case."""
    out = run_kaggle(["datasets", "status", ref], f"status of dataset {ref}", 120).strip()
    return (out.splitlines()[-1].strip().lower() if out else "") or "unknown"


def dataset_files(ref: str, page_size: int = 200) -> dict[str, str]:
    """{name: size} of the files Kaggle lists for dataset OWNER/SLUG (`kaggle datasets files`,
    every page read). An answer that is not the listing (an error the client prints while
    exiting 0) raises."""
    files: dict[str, str] = {}
    token = None
    for _ in range(10_000):
        args = ["datasets", "files", ref, "--csv", "--page-size", str(page_size)]
        out = run_kaggle(args + (["--page-token", token] if token else []), f"files of dataset {ref}", 300)
        found = re.search(r"^Next Page Token = (\S+)\s*$", out, re.M)
        lines = out.splitlines()
        header = next((i for i, ln in enumerate(lines) if ln.strip().startswith("name,")), None)
        if header is None:
            if out.strip() == "No files found":
                return files
            raise KitError(f"files of dataset {ref}: unexpected answer from `kaggle datasets files`: "
                           f"{' | '.join(ln.strip() for ln in lines if ln.strip())[:300] or 'nothing'}", exit_code=1)
        for row in csv.DictReader(io.StringIO("\n".join(lines[header:]))):
            if row.get("name"):
                files[row["name"]] = row.get("size") or ""
        if not found or found.group(1) == token:
            return files
        token = found.group(1)
    raise KitError(f"files of dataset {ref}: the listing did not end", exit_code=1)


def staged_files(folder: str | os.PathLike, dir_mode: str = "skip") -> list[str]:
    """The names an upload of `folder` should leave in the dataset: its files (the metadata and
    hidden files are not uploaded), and each sub-folder as NAME.zip / NAME.tar under
    --dir-mode zip / tar."""
    names = []
    for entry in sorted(os.listdir(folder)):
        if entry in _METADATA_FILES or entry.startswith("."):
            continue
        path = os.path.join(folder, entry)
        if os.path.isfile(path):
            names.append(entry)
        elif os.path.isdir(path) and dir_mode in ("zip", "tar"):
            names.append(f"{entry}.{dir_mode}")
    return names


def verify_dataset(folder: str | os.PathLike, dir_mode: str = "skip", poll_s: float = 10,
                   timeout_s: float = 1800, on_status: Callable[[str], None] | None = None) -> list[str]:
    """After an upload of `folder`: wait until Kaggle has processed the dataset (`datasets status`
    "ready"), then check that every staged file is in its listing (`datasets files`). Return the
    names found; raise KitError (exit code 1) naming the missing files, a failed processing, or a
    dataset still not ready after `timeout_s`."""
    ref = _dataset_ref(folder)
    expected = staged_files(folder, dir_mode)
    deadline = time.monotonic() + timeout_s
    last = None
    while True:
        status = dataset_status(ref)
        if on_status and status != last:
            on_status(status)
        last = status
        if status in DATASET_READY:
            break
        if status in DATASET_FAILED:
            raise KitError(f"dataset {ref}: Kaggle's processing of the upload ended with status '{status}'; "
                           f"upload it again", exit_code=1)
        if time.monotonic() + poll_s > deadline:
            raise KitError(f"dataset {ref} still '{status}' after {timeout_s:.0f} s: its files were not checked; "
                           f"check them with kaggle datasets files {ref} once it is ready", exit_code=1)
        time.sleep(poll_s)
    listed = dataset_files(ref)
    missing = [n for n in expected if n not in listed]
    if missing:
        raise KitError(f"dataset {ref}: {len(missing)} of {len(expected)} staged file(s) missing on Kaggle after "
                       f"the upload: {', '.join(missing)}; upload it again", exit_code=1)
    return [n for n in expected if n in listed]


def dataset_exists(ref: str) -> bool:
    """Whether dataset OWNER/SLUG exists for us (`kaggle datasets status`; a 404 means no)."""
    try:
        run_kaggle(["datasets", "status", ref], f"status of dataset {ref}", 120)
    except KitError as e:
        if re.search(r"\b404\b|not found", str(e), re.I):
            return False
        raise
    return True


# ---- submissions -----------------------------------------------------------------------------

def submit_file(competition: str, path: str | os.PathLike, message: str) -> str:
    """Submit a CSV to a file-upload competition; return the client's message."""
    args = ["competitions", "submit", competition, "-f", str(path), "-m", message]
    return run_kaggle(args, f"submission to {competition}").strip()


def submit_kernel(competition: str, kernel_slug: str, version: int, file_name: str, message: str) -> str:
    """Submit version `version` of kernel OWNER/SLUG to a code competition (FAT2019 is one): Kaggle
    reruns it on the hidden test set and scores `file_name`. Return the client's message."""
    args = ["competitions", "submit", competition, "-k", kernel_slug, "-v", str(version),
            "-f", file_name, "-m", message]
    return run_kaggle(args, f"submission of {kernel_slug} v{version} to {competition}").strip()
