import io
import subprocess
import sys
import tarfile
import zipfile

import pytest

from cardigan_utils.data.acdc import write_acdc_patient
from cardigan_utils.data.case import DataError
from cardigan_utils.data.export import write_dataset
from cardigan_utils.data.prepare import extract_archive, find_dataset_root, prepare_dataset, sha256sum, verify_dataset
from conftest import ROOT, disk_case


def _fake_acdc(root, n=4):
    for i in range(1, n + 1):
        pid = f"patient{i:03d}"
        write_acdc_patient([disk_case(pid=pid, phase="ED"), disk_case(pid=pid, phase="ES", radius=6)], root / "ACDC" / "training")
    return root / "ACDC"


def _zip_folder(folder, archive):
    with zipfile.ZipFile(archive, "w") as zf:
        for f in folder.rglob("*"):
            zf.write(f, f.relative_to(folder.parent))
    return archive


def test_prepare_from_zip_with_checksum_and_a_broken_patient(tmp_path):
    src = _fake_acdc(tmp_path / "src")
    (src / "training" / "patient003" / "Info.cfg").unlink()
    archive = _zip_folder(src, tmp_path / "acdc.zip")
    report, cache = prepare_dataset(archive, dataset="acdc", run_dir=tmp_path / "run", image_size=32,
                                    sha256=sha256sum(archive), unpack_to=tmp_path / "unpacked")
    assert [p for p, _ in report.problems] == ["patient003"]
    assert "Info.cfg: file not found" in report.problems[0][1]
    assert cache.cases.patient_id.nunique() == 3
    assert "3 patients read (6 cases), 1 with problems" in report.summary()


def test_checksum_mismatch(tmp_path):
    archive = _zip_folder(_fake_acdc(tmp_path / "src", n=1), tmp_path / "a.zip")
    with pytest.raises(DataError, match="SHA-256 .* does not match the expected 0000"):
        extract_archive(archive, tmp_path / "out", sha256="0" * 64)
    assert not (tmp_path / "out").exists()


def test_zip_member_escaping_the_target_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../escaped.txt", "x")
    with pytest.raises(DataError, match=r"member '\.\./escaped\.txt' would be written outside"):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "escaped.txt").exists()


def test_tar_symlink_escaping_the_target_is_refused(tmp_path):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        link = tarfile.TarInfo("data/link")
        link.type, link.linkname = tarfile.SYMTYPE, "../../etc/passwd"
        tf.addfile(link)
    with pytest.raises(DataError, match="would be written outside"):
        extract_archive(archive, tmp_path / "out")


@pytest.mark.parametrize("kind", ["absolute symlink", "escaping hardlink", "fifo"])
def test_tar_members_that_are_not_plain_files_inside_are_refused(tmp_path, kind):
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tf:
        tf.addfile(tarfile.TarInfo("data/ok.txt"), io.BytesIO(b""))
        m = tarfile.TarInfo("data/x")
        if kind == "absolute symlink":
            m.type, m.linkname = tarfile.SYMTYPE, "/etc/passwd"
        elif kind == "escaping hardlink":
            m.type, m.linkname = tarfile.LNKTYPE, "../../outside"
        else:
            m.type = tarfile.FIFOTYPE
        tf.addfile(m)
    with pytest.raises(DataError, match="refusing to unpack it"):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists() and [p.name for p in tmp_path.iterdir()] == ["evil.tar"]


@pytest.mark.parametrize("damage", ["truncated zip", "zip named tar.gz"])
def test_damaged_archives(tmp_path, damage):
    good = _zip_folder(_fake_acdc(tmp_path / "src", n=1), tmp_path / "a.zip")
    bad = tmp_path / ("b.zip" if damage == "truncated zip" else "b.tar.gz")
    data = good.read_bytes()
    bad.write_bytes(data[: len(data) // 3] if damage == "truncated zip" else data)
    with pytest.raises(DataError, match="cannot unpack it .*the download is damaged"):
        extract_archive(bad, tmp_path / "out")


def test_tar_is_unpacked(tmp_path):
    src = _fake_acdc(tmp_path / "src", n=2)
    archive = tmp_path / "a.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(src, arcname="download/ACDC")
    out = extract_archive(archive, tmp_path / "out")
    assert find_dataset_root(out, "acdc").name == "ACDC"


def test_unknown_archive_and_wrong_download(tmp_path):
    (tmp_path / "a.rar").write_bytes(b"x")
    with pytest.raises(DataError, match="unknown archive type"):
        extract_archive(tmp_path / "a.rar", tmp_path / "o")
    (tmp_path / "empty" / "x").mkdir(parents=True)
    with pytest.raises(DataError, match="no ACDC layout found"):
        find_dataset_root(tmp_path / "empty", "acdc")


def test_write_dataset_refuses_a_full_folder_and_wrong_layout(tmp_path):
    cases = [disk_case(phase="ED"), disk_case(phase="ES", radius=6)]
    out = write_dataset(cases, tmp_path / "d", layout="acdc", splits={"patient001": "test"})
    assert (out / "testing" / "patient001" / "Info.cfg").exists()
    assert len(verify_dataset(out, "acdc").cases) == 2
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_dataset(cases, out, layout="acdc")
    with pytest.raises(ValueError, match="can be written as"):
        write_dataset(cases, tmp_path / "e", layout="camus-mhd")


def test_prepare_script_exit_codes(tmp_path):
    src = _fake_acdc(tmp_path / "src", n=2)
    cmd = [sys.executable, str(ROOT / "data_scripts" / "prepare_acdc.py"), str(src), "--run-dir", str(tmp_path / "run"), "--image-size", "64"]
    done = subprocess.run(cmd, capture_output=True, text=True, env={"CARDIGAN_PROGRESS": "0", "PATH": ""})
    assert done.returncode == 0, done.stderr
    assert "2 patients read" in done.stdout
    bad = subprocess.run(cmd[:2] + [str(tmp_path / "nothing")] + cmd[3:], capture_output=True, text=True)
    assert bad.returncode == 1 and "error:" in bad.stderr and "Traceback" not in bad.stderr
