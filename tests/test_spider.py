"""SPIDER: download from a local server (checksums, resume, atomicity), layout reader, metrics."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import socket
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bmetoolkit.cli import main
from bmetoolkit.data import spider
from bmetoolkit.data.phantom import PhantomConfig, make_phantom
from bmetoolkit.errors import BmetoolkitError
from bmetoolkit.io import load
from bmetoolkit.modic import NOT_ASSESSED
from tests.spider_layout import write_gradings, write_phantom_case

RECORD = spider.SPIDER_RECORD
#: The local server stops by itself after this many seconds, whatever the tests do.
SERVER_LIFETIME_S = 60


class _Server:
    """A tiny HTTP server on 127.0.0.1 serving in-memory files, with Range support."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.requests: list[tuple[str, str | None]] = []
        self.cut_once: dict[str, int] = {}  # path -> bytes sent before dropping the connection
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                server.requests.append((path, self.headers.get("Range")))
                body = server.files.get(path)
                if body is None:
                    self.send_error(404)
                    return
                start, status = 0, 200
                if self.headers.get("Range"):
                    start = int(self.headers["Range"].split("=")[1].split("-")[0])
                    status = 206
                self.send_response(status)
                self.send_header("Content-Length", str(len(body) - start))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.end_headers()
                cut = server.cut_once.pop(path, None)
                self.wfile.write(body[start:cut] if cut is not None else body[start:])
                if cut is not None:
                    self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.timer = threading.Timer(SERVER_LIFETIME_S, self.httpd.shutdown)

    def __enter__(self) -> _Server:
        self.thread.start()
        self.timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.timer.cancel()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture
def server() -> Iterator[_Server]:
    rng = np.random.default_rng(0)
    payloads = {
        "overview.csv": b"new_file_name,subset\n1_t1,training\n1_t2,training\n",
        "radiological_gradings.csv": b"Patient,IVD label,Modic\n1,1,2\n1,2,0\n",
        "masks.zip": _zip({"masks/1_t1.mha": b"mask-t1", "masks/1_t2.mha": b"mask-t2"}),
        "images.zip": _zip({"images/1_t1.mha": rng.bytes(300_000), "images/1_t2.mha": b"t2"}),
    }
    files: dict[str, bytes] = {f"/files/{name}": data for name, data in payloads.items()}
    with _Server(files) as running:
        entries = [
            {
                "key": name,
                "size": len(data),
                "checksum": "md5:" + hashlib.md5(data).hexdigest(),
                "links": {"self": f"{running.url}/files/{name}"},
            }
            for name, data in payloads.items()
        ]
        files[f"/api/records/{RECORD}"] = json.dumps({"files": entries}).encode()
        running.payloads = payloads  # type: ignore[attr-defined]
        yield running


def test_fetch_downloads_verifies_and_extracts(server: _Server, tmp_path: Path) -> None:
    root = spider.fetch_spider(tmp_path / "spider", api_url=f"{server.url}/api/records")
    assert (root / "radiological_gradings.csv").read_bytes() == server.payloads[
        "radiological_gradings.csv"
    ]
    assert (root / "images" / "1_t1.mha").stat().st_size == 300_000
    assert (root / "masks" / "1_t2.mha").read_bytes() == b"mask-t2"
    assert not list(root.rglob("*.part")) and not list(root.glob(".*partial*"))
    before = len(server.requests)
    spider.fetch_spider(root, api_url=f"{server.url}/api/records")  # all there: nothing fetched
    assert [path for path, _ in server.requests[before:]] == [f"/api/records/{RECORD}"]


def test_interrupted_download_never_looks_complete_and_resumes(
    server: _Server, tmp_path: Path
) -> None:
    server.cut_once["/files/images.zip"] = 100_000
    with pytest.raises(spider.DownloadError, match="run again to resume"):
        spider.fetch_spider(tmp_path, api_url=f"{server.url}/api/records", files=["images.zip"])
    assert not (tmp_path / "images.zip").exists()
    assert (tmp_path / "images.zip.part").stat().st_size == 100_000
    spider.fetch_spider(tmp_path, api_url=f"{server.url}/api/records", files=["images.zip"])
    assert ("/files/images.zip", "bytes=100000-") in server.requests
    assert (tmp_path / "images.zip").read_bytes() == server.payloads["images.zip"]
    assert not (tmp_path / "images.zip.part").exists()


def test_checksum_mismatch_is_refused_and_cleaned(server: _Server, tmp_path: Path) -> None:
    original = server.payloads["overview.csv"]
    server.files["/files/overview.csv"] = original.replace(b"training", b"trainin_")  # same size
    assert len(server.files["/files/overview.csv"]) == len(server.payloads["overview.csv"])
    with pytest.raises(spider.DownloadError, match="md5 checksum"):
        spider.fetch_spider(tmp_path, api_url=f"{server.url}/api/records", files=["overview.csv"])
    assert list(tmp_path.iterdir()) == []


def test_unknown_file_and_unreachable_server(server: _Server, tmp_path: Path) -> None:
    with pytest.raises(spider.DownloadError, match="no file"):
        spider.fetch_spider(tmp_path, api_url=f"{server.url}/api/records", files=["t3.zip"])
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(spider.DownloadError, match="internet connection"):
        spider.fetch_spider(tmp_path, api_url=f"http://127.0.0.1:{port}/api", timeout=5)


def test_cli_fetch(server: _Server, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    api = f"{server.url}/api/records"
    args = ["spider", "fetch", "--dest", str(tmp_path), "--api-url", api, "--quiet"]
    assert main([*args, "--only", "radiological_gradings.csv"]) == 0
    assert "CC BY 4.0" in capsys.readouterr().out
    assert main([*args, "--only", "nothing.csv"]) == 1
    assert "nothing.csv" in capsys.readouterr().err


def test_cache_dir_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(spider.CACHE_ENV_VAR, str(tmp_path / "c"))
    assert spider.cache_dir() == tmp_path / "c"
    assert spider.cache_dir(tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv(spider.CACHE_ENV_VAR)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert spider.cache_dir() == tmp_path / "xdg" / "bmetoolkit"


# --- layout reader and metrics on phantom cases written in SPIDER's layout ----------------

#: Seed 3's truth: T11 inferior + T12 superior II, L4 inf + L5 sup I, L5 inf + S1 sup I/II.
SEED3_DISCS = {"T11-T12": "II", "L4-L5": "I", "L5-S1": "I"}


@pytest.fixture(scope="module")
def phantom_spider(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("spider")
    studies = {
        p: make_phantom(seed=p, lesions="random", config=PhantomConfig.small()) for p in (3, 9)
    }
    rows = []
    for patient, study in studies.items():
        rows += write_phantom_case(study, root, patient)
    write_gradings(rows, root)
    return {"root": root, "studies": studies}


def test_reader_finds_cases_and_levels(phantom_spider: dict) -> None:
    root, study = phantom_spider["root"], phantom_spider["studies"][3]
    cases = spider.find_cases(root)
    assert [(c.patient, c.sequence) for c in cases] == [(3, "t1"), (3, "t2"), (9, "t1"), (9, "t2")]
    gradings = spider.read_gradings(root / "radiological_gradings.csv")
    mine = gradings[gradings["patient"] == 3].set_index("disc")
    assert mine.loc["L5-S1", "ivd_label"] == 1 and mine.loc["T11-T12", "ivd_label"] == 7
    expected = {disc: SEED3_DISCS.get(disc, "none") for disc in mine.index}
    assert mine["modic_type"].to_dict() == expected
    # Images keep their geometry through .mha; the mask maps back to VerSe ids (no sacrum).
    t1 = load(cases[0].image)
    assert np.allclose(t1.affine, study.t1.affine, atol=1e-4)
    assert np.array_equal(t1.data, study.t1.data)
    labels = spider.spider_vertebrae(load(cases[0].mask, kind="label"))
    truth = study.truth.vertebrae.data.copy()
    truth[truth == 26] = 0
    assert np.array_equal(labels.bodies.data, truth)
    assert list(labels.levels.values()) == ["T11", "T12", "L1", "L2", "L3", "L4", "L5"]


def test_missing_folder_and_columns_are_explained(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="spider fetch"):
        spider.find_cases(tmp_path)
    (tmp_path / "g.csv").write_text("Patient,Disc,Modic\n1,1,0\n")
    with pytest.raises(BmetoolkitError, match="IVD label"):
        spider.read_gradings(tmp_path / "g.csv")


def test_agreement_matches_hand_computed_values() -> None:
    expected = ["none", "none", "I", "I", "II", "II"]
    predicted = ["none", "I", "I", "I", "II", "none"]
    result = spider.agreement(expected, predicted)
    assert result["type"]["accuracy"] == pytest.approx(4 / 6)
    assert result["type"]["kappa"] == pytest.approx(0.5)  # (2/3 - 1/3) / (1 - 1/3)
    assert result["presence"]["sensitivity"] == pytest.approx(3 / 4)
    assert result["presence"]["specificity"] == pytest.approx(1 / 2)
    assert result["presence"]["balanced_accuracy"] == pytest.approx(5 / 8)
    assert result["presence"]["kappa"] == pytest.approx(0.25)  # (24/36 - 20/36) / (16/36)
    assert result["per_type"]["I"] == {
        "n_expected": 2,
        "n_predicted": 3,
        "sensitivity": 1.0,
        "precision": pytest.approx(2 / 3),
    }
    assert result["type"]["confusion"]["II"] == {"none": 1, "I": 0, "II": 1, "III": 0}


def test_disc_predictions_rules() -> None:
    table = pd.DataFrame(
        [
            ("L3", "inferior", "II", 0.5),
            ("L4", "superior", "I/II", 0.9),  # larger: its dominant type I wins
            ("L4", "inferior", "none", 0.0),
            ("L5", "superior", "III", 0.1),
            ("S1", "superior", "none", 0.0),  # L5 inferior missing: the other side decides
            ("T12", "inferior", "I", 0.2),  # L1, L2 missing: no T12-L1 ... disc invented
        ],
        columns=["level", "endplate", "modic_type", "volume_ml"],
    )
    discs = spider.disc_predictions(table).set_index("disc")["predicted"].to_dict()
    assert discs == {"L3-L4": "I", "L4-L5": "III", "L5-S1": "none"}


def test_not_assessed_endplates_give_no_disc_prediction() -> None:
    """A T1 failing the contrast check makes every type "not assessed": no disc is graded."""
    table = pd.DataFrame(
        [("L4", "inferior", NOT_ASSESSED, 0.0), ("L5", "superior", NOT_ASSESSED, 0.0),
         ("L5", "inferior", "II", 0.3), ("S1", "superior", NOT_ASSESSED, 0.0)],
        columns=["level", "endplate", "modic_type", "volume_ml"],
    )  # fmt: skip
    discs = spider.disc_predictions(table).set_index("disc")["predicted"].to_dict()
    assert discs == {"L5-S1": "II"}


def _truth_analyzer(studies: dict) -> object:
    """An ``analyze`` stand-in returning the phantom truth as its endplate table."""

    class Result:
        def __init__(self, endplates: list[dict]) -> None:
            self.endplates = pd.DataFrame(endplates)

    def analyze(t1, t2=None, vertebrae=None, params=None):
        patient = int(Path(t1.source).name.split("_")[0])
        assert vertebrae.levels_known and t2 is not None
        return Result(studies[patient].truth.endplates)

    return analyze


def test_validation_with_truth_as_predictions(phantom_spider: dict) -> None:
    studies = phantom_spider["studies"]
    _, metrics = spider.validate_spider(phantom_spider["root"], analyze=_truth_analyzer(studies))
    assert metrics["n"] == 14 and metrics["n_patients"] == 2  # 7 discs T11-T12..L5-S1 each
    assert metrics["type"]["accuracy"] == 1.0 and metrics["type"]["kappa"] == 1.0
    assert metrics["n_unreported"] == 0


def test_validation_scores_a_blind_analyzer(phantom_spider: dict) -> None:
    studies = phantom_spider["studies"]
    healthy = {p: make_phantom(seed=p, config=PhantomConfig.small()) for p in studies}
    failures: list[int] = []
    per_disc, metrics = spider.validate_spider(
        phantom_spider["root"],
        analyze=_truth_analyzer(healthy),  # reports no change anywhere
        patients=[3, 9, 42],
        on_error=lambda patient, exc: failures.append(patient),
    )
    changed = int((per_disc["expected"] != "none").sum())
    assert changed >= len(SEED3_DISCS)
    assert metrics["presence"]["sensitivity"] == 0.0
    assert metrics["type"]["accuracy"] == pytest.approx((14 - changed) / 14)
    assert metrics["type"]["kappa"] == pytest.approx(0.0)
    assert failures == []


def test_validation_with_the_real_analysis(phantom_spider: dict) -> None:
    analysis = pytest.importorskip("bmetoolkit.analysis", reason="analysis not importable yet")
    per_disc, metrics = spider.validate_spider(
        phantom_spider["root"], analyze=analysis.analyze, patients=[3]
    )
    assert metrics["n"] == 7 and metrics["n_failed"] == 0
    assert set(per_disc["predicted"]) <= set(spider.MODIC_TYPES)


def test_cli_validate(phantom_spider: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("bmetoolkit.analysis", reason="analysis not importable yet")
    out, metrics = tmp_path / "discs.csv", tmp_path / "metrics.json"
    args = ["spider", "validate", str(phantom_spider["root"]), "--limit", "1"]
    assert main([*args, "--out", str(out), "--json", str(metrics)]) == 0
    assert "Cohen's kappa" in capsys.readouterr().out
    assert len(pd.read_csv(out)) == 7 and json.loads(metrics.read_text())["n"] == 7
