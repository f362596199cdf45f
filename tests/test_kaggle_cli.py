"""src.ship.client against the REAL `kaggle` command, talking to tests/kaggle_stub.py on loopback.

Every test runs with HOME, KAGGLE_CONFIG_DIR and TMPDIR in its own tmp_path (see kaggle_stub).
"""
from __future__ import annotations

import json
import os

import pytest

from src.ship import client as kc
from src.kit.errors import KitError

from kaggle_stub import KEY, USER, clean_kaggle_env, kaggle_env, kaggle_stub  # noqa: F401 (fixtures)

COMP = "freesound-audio-tagging-2019"
KERNEL = f"{USER}/kit-fat-infer"
SCRIPT = "print('déjà vu: 42')  # the kit's inference entry point\n"


def write_kernel(folder, title="Kit FAT infer", slug="kit-fat-infer", gpu=True):
    meta = kc.kernel_metadata(USER, slug, title, "main.py", COMP, [f"{USER}/kit-weights"], gpu)
    kc.write_json(folder, kc.KERNEL_METADATA_FILE, meta)
    (folder / "main.py").write_text(SCRIPT, encoding="utf-8")
    return folder


def write_dataset(folder, payload=bytes(range(256)) * 8):
    kc.write_json(folder, kc.DATASET_METADATA_FILE, kc.dataset_metadata(USER, "kit-weights", "Kit model weights"))
    (folder / "weights.bin").write_bytes(payload)
    (folder / "fold0").mkdir()
    (folder / "fold0" / "best.keras").write_bytes(b"model")
    return folder


# ---- kernels ---------------------------------------------------------------------------------

@pytest.mark.slow
def test_push_kernel_sends_the_script_and_metadata(kaggle_stub, kaggle_env, tmp_path):
    folder = write_kernel(tmp_path / "kernel")
    meta = json.loads((folder / kc.KERNEL_METADATA_FILE).read_text())
    assert meta["enable_internet"] is False and "enable_internet" in meta  # the client defaults it to true

    assert kc.push_kernel(folder) == 1
    assert kc.push_kernel(folder) == 2
    body = kaggle_stub.calls("SaveKernel")[0]
    assert kaggle_stub.requests[0].path == "/api/v1/kernels.KernelsApiService/SaveKernel"
    assert body["text"] == SCRIPT
    assert body["slug"] == KERNEL and body["newTitle"] == "Kit FAT infer"
    assert (body["language"], body["kernelType"]) == ("python", "script")
    assert body["competitionDataSources"] == [COMP]
    assert body["datasetDataSources"] == [f"{USER}/kit-weights"]
    assert body["enableInternet"] is False and body["isPrivate"] is True and body["enableGpu"] is True
    assert body["dockerImagePinningType"] == "original"


@pytest.mark.slow
def test_refused_push_raises_with_the_server_message(kaggle_stub, kaggle_env, tmp_path):
    folder = write_kernel(tmp_path / "kernel", gpu=False)
    kaggle_stub.refuse("SaveKernel", "Maximum weekly GPU quota reached")  # client prints it, exits 0
    with pytest.raises(KitError) as e:
        kc.push_kernel(folder)
    assert e.value.exit_code == 1
    assert "kernel push of kituser/kit-fat-infer" in str(e.value)
    assert "Kernel push error: Maximum weekly GPU quota reached" in str(e.value)

    kaggle_stub.refuse("SaveKernel", "Competition data source not found", http_status=400)  # exit 1
    with pytest.raises(KitError, match="Competition data source not found") as e:
        kc.push_kernel(folder)
    assert e.value.exit_code == 1

    kaggle_stub.refuse("SaveKernel", "Unauthenticated", http_status=401)  # the client's 20-line help
    with pytest.raises(KitError, match="refused the credentials") as e:
        kc.push_kernel(folder)
    assert "\n" not in str(e.value) and KEY not in str(e.value)


def test_push_with_a_source_kaggle_could_not_attach_raises(kaggle_stub, kaggle_env, tmp_path):
    folder = write_kernel(tmp_path / "kernel")
    kaggle_stub.extra["SaveKernel"] = {"invalidDatasetSources": [f"{USER}/kit-weights"]}
    with pytest.raises(KitError, match="not valid dataset sources") as e:
        kc.push_kernel(folder)
    assert e.value.exit_code == 1


def test_push_checks_hand_written_metadata_before_calling_kaggle(kaggle_stub, kaggle_env, tmp_path):
    folder = write_kernel(tmp_path / "kernel")
    meta = json.loads((folder / kc.KERNEL_METADATA_FILE).read_text())
    kc.write_json(folder, kc.KERNEL_METADATA_FILE, {**meta, "title": "Another title"})
    with pytest.raises(KitError, match="another-title"):
        kc.push_kernel(folder)
    assert kaggle_stub.requests == []


@pytest.mark.slow
def test_kernel_status_wait_and_error_message(kaggle_stub, kaggle_env):
    kaggle_stub.kernel_statuses = [("QUEUED", None), ("RUNNING", None), ("ERROR", "Notebook ran out of memory")]
    assert kc.kernel_status(KERNEL) == ("queued", None)
    assert kaggle_stub.calls("GetKernelSessionStatus")[0] == {"userName": USER, "kernelSlug": "kit-fat-infer"}
    seen = []
    assert kc.wait_kernel(KERNEL, poll_s=0.01, timeout_s=120, on_status=seen.append) == (
        "error", "Notebook ran out of memory")
    assert seen == ["running", "error"]

    kaggle_stub.kernel_statuses = [("RUNNING", None)]
    with pytest.raises(KitError, match="still 'running'") as e:
        kc.wait_kernel(KERNEL, poll_s=10, timeout_s=0)
    assert e.value.exit_code == 1


def test_parse_kernel_status_both_client_generations():
    two = 'u/k has status "KernelWorkerStatus.ERROR"\nFailure message: "boom\nat line 3"\n'
    assert kc.parse_kernel_status(two) == ("error", "boom\nat line 3")
    assert kc.parse_kernel_status('u/k has status "complete"\n') == ("complete", None)
    assert kc.parse_kernel_status('u/k has status "KernelWorkerStatus.CANCEL_ACKNOWLEDGED"')[0] in kc.TERMINAL_STATUSES
    with pytest.raises(KitError):
        kc.parse_kernel_status("something else")


def test_kernel_output_downloads_files_and_log(kaggle_stub, kaggle_env, tmp_path):
    kaggle_stub.output_files = {"submission.csv": b"fname,Bass_drum\nte000000.wav,0.5\n"}
    kaggle_stub.kernel_log = '[{"stream_name":"stdout","data":"fold 0 lwlrap 0.5"}]'
    paths = kc.kernel_output(KERNEL, tmp_path / "out")
    assert sorted(os.path.basename(p) for p in paths) == ["kit-fat-infer.log", "submission.csv"]
    assert (tmp_path / "out" / "submission.csv").read_bytes() == kaggle_stub.output_files["submission.csv"]
    assert (tmp_path / "out" / "kit-fat-infer.log").read_text() == kaggle_stub.kernel_log


# ---- datasets --------------------------------------------------------------------------------

@pytest.mark.slow
def test_dataset_create_then_version(kaggle_stub, kaggle_env, tmp_path):
    payload = os.urandom(3000)
    folder = write_dataset(tmp_path / "ds", payload)
    assert kc.dataset_exists(f"{USER}/kit-weights") is False
    kaggle_stub.requests.clear()

    kc.dataset_create(folder)
    names = [n for n in kaggle_stub.names() if n != "upload"]
    assert names[0] == "GetDatasetStatus" and names[-1] == "CreateDataset"
    starts = {b["name"]: b for b in kaggle_stub.calls("StartBlobUpload")}
    assert set(starts) == {"weights.bin", "fold0.zip"}  # the sub-folder goes up zipped
    assert starts["weights.bin"]["contentLength"] == len(payload)
    create = kaggle_stub.calls("CreateDataset")[0]
    assert (create["ownerSlug"], create["slug"], create["title"]) == (USER, "kit-weights", "Kit model weights")
    assert create["licenseName"] == "CC0-1.0" and create["isPrivate"] is True
    tokens = [f["token"] for f in create["files"]]
    assert sorted(tokens) == sorted(kaggle_stub.uploads)
    assert payload in kaggle_stub.uploads.values()  # the bytes PUT are the file's
    assert kc.dataset_exists(f"{USER}/kit-weights") is True

    kaggle_stub.requests.clear()
    kc.dataset_version(folder, "fold 1 added")
    version = kaggle_stub.calls("CreateDatasetVersion")[0]
    assert (version["ownerSlug"], version["datasetSlug"]) == (USER, "kit-weights")
    assert version["body"]["versionNotes"] == "fold 1 added" and len(version["body"]["files"]) == 2
    assert payload in [kaggle_stub.uploads[f["token"]] for f in version["body"]["files"]]


@pytest.mark.slow
def test_refused_dataset_requests_raise(kaggle_stub, kaggle_env, tmp_path):
    folder = write_dataset(tmp_path / "ds")
    kaggle_stub.refuse("CreateDataset", "Dataset storage quota exceeded")
    with pytest.raises(KitError, match="Dataset creation error: Dataset storage quota exceeded") as e:
        kc.dataset_create(folder)
    assert e.value.exit_code == 1

    kaggle_stub.refuse("CreateDatasetVersion", "You do not own this dataset")
    with pytest.raises(KitError, match="Dataset version creation error: You do not own this dataset"):
        kc.dataset_version(folder, "v2")

    kaggle_stub.datasets.add(f"{USER}/kit-weights")  # create refuses a slug in use, client-side
    with pytest.raises(KitError, match="already in use"):
        kc.dataset_create(folder)


# ---- submissions -----------------------------------------------------------------------------

@pytest.mark.slow
def test_submit_kernel_and_file(kaggle_stub, kaggle_env, tmp_path):
    kc.submit_kernel(COMP, KERNEL, 3, "submission.csv", "cnn 5 folds")
    body = kaggle_stub.calls("CreateCodeSubmission")[0]
    assert body == {"competitionName": COMP, "kernelOwner": USER, "kernelSlug": "kit-fat-infer",
                    "kernelVersion": 3, "fileName": "submission.csv", "submissionDescription": "cnn 5 folds"}

    csv = tmp_path / "submission.csv"
    csv.write_text("key_id,word\n1,cat dog owl\n")
    kc.submit_file("quickdraw-doodle-recognition", csv, "cnn")
    assert kaggle_stub.calls("CreateSubmission")[0]["submissionDescription"] == "cnn"
    assert csv.read_bytes() in kaggle_stub.uploads.values()

    kaggle_stub.refuse("CreateCodeSubmission", "Submission limit reached", http_status=400)
    with pytest.raises(KitError, match="Submission limit reached"):
        kc.submit_kernel(COMP, KERNEL, 3, "submission.csv", "again")


# ---- credentials, installation -----------------------------------------------------------------

def test_missing_credentials_is_one_clear_line(monkeypatch, tmp_path):
    home, config = clean_kaggle_env(monkeypatch, tmp_path)
    problem = kc.credentials_problem()
    assert problem and "\n" not in problem and "KAGGLE_USERNAME" in problem and config in problem
    assert kc.configured_user() is None
    with pytest.raises(KitError) as e:
        kc.kernel_status(KERNEL)
    assert e.value.exit_code == 2 and "no Kaggle credentials found" in str(e.value) and "\n" not in str(e.value)

    monkeypatch.setenv("KAGGLE_USERNAME", "envuser")
    assert kc.credentials_problem() is not None  # a user without a key is not enough
    monkeypatch.setenv("KAGGLE_KEY", KEY)
    assert kc.credentials_problem() is None and kc.configured_user() == "envuser"
    monkeypatch.delenv("KAGGLE_USERNAME")
    monkeypatch.delenv("KAGGLE_KEY")

    monkeypatch.setenv("KAGGLE_API_TOKEN", "KGAT_x")
    assert kc.credentials_problem() is None
    monkeypatch.delenv("KAGGLE_API_TOKEN")

    os.makedirs(os.path.join(home, ".kaggle"))
    with open(os.path.join(home, ".kaggle", "access_token"), "w") as f:
        f.write("KGAT_y\n")
    assert kc.credentials_problem() is None


def test_kaggle_json_credentials_and_user(kaggle_env):
    assert kc.credentials_problem() is None
    assert kc.configured_user() == USER


def test_client_not_installed(monkeypatch, kaggle_env):
    monkeypatch.setattr(kc.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(kc.shutil, "which", lambda name: None)
    with pytest.raises(KitError, match=r'pip install -e "\.\[kaggle\]"'):
        kc.kernel_status(KERNEL)


# ---- metadata --------------------------------------------------------------------------------

def test_kernel_metadata_content_and_validation():
    meta = kc.kernel_metadata(USER, "kit-fat-infer", "Kit FAT infer", "main.py", COMP, [], False)
    assert meta == {
        "id": KERNEL, "title": "Kit FAT infer", "code_file": "main.py", "language": "python",
        "kernel_type": "script", "is_private": True, "enable_gpu": False, "enable_internet": False,
        "dataset_sources": [], "competition_sources": [COMP], "kernel_sources": [],
        "docker_image_pinning_type": "original"}
    with pytest.raises(KitError, match="at least 5"):
        kc.kernel_metadata(USER, "kit", "Kit", "main.py", COMP, [], False)
    with pytest.raises(KitError, match="'kit-fat-infer-v2'.*'kit-fat-infer'"):
        kc.kernel_metadata(USER, "kit-fat-infer", "Kit FAT infer v2", "main.py", COMP, [], False)
    with pytest.raises(KitError, match="ASCII"):
        kc.kernel_metadata(USER, "kit-fat-infer", "Kit FAT infér", "main.py", COMP, [], False)
    with pytest.raises(KitError, match="OWNER/SLUG"):
        kc.kernel_metadata(USER, "kit-fat-infer", "Kit FAT infer", "main.py", COMP, ["kit-weights"], False)


def test_title_slug_matches_python_slugify():
    titles = ["Kit FAT infer", "  FAT2019: CNN (5 folds) ", "Kit's model -- v2", "1,000 clips_fast", "a.b/c"]
    assert [kc.title_slug(t) for t in titles] == [
        "kit-fat-infer", "fat2019-cnn-5-folds", "kit-s-model-v2", "1000-clips-fast", "a-b-c"]
    slugify = pytest.importorskip("slugify").slugify  # the client's own rule, where installed
    assert [kc.title_slug(t) for t in titles] == [slugify(t) for t in titles]


def test_dataset_metadata_validation():
    assert kc.dataset_metadata(USER, "kit-weights", "Kit model weights") == {
        "id": f"{USER}/kit-weights", "title": "Kit model weights", "licenses": [{"name": "CC0-1.0"}]}
    with pytest.raises(KitError, match="6 to 50"):
        kc.dataset_metadata(USER, "kit", "Kit model weights")
    with pytest.raises(KitError, match="6 to 50"):
        kc.dataset_metadata(USER, "kit-weights", "Kit")
    with pytest.raises(KitError, match="letters, digits"):
        kc.dataset_metadata(USER, "kit_weights", "Kit model weights")
