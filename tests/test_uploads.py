"""Uploads into the seeds folder: checked by content, safe names, no overwrite, nothing lost."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from assistant import Assistant
from assistant.documents.reader import scan
from assistant.documents.uploads import remove_document, safe_name, store_upload
from assistant.errors import BadInputError

ROOT = Path(__file__).resolve().parent.parent
ENCRYPTED = ROOT / "tests" / "data" / "encrypted.pdf"
MB = 2**20


def _file(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / "incoming" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return path


def _seeds_listing(seeds: Path) -> list[str]:
    return sorted(p.relative_to(seeds).as_posix() for p in seeds.rglob("*") if p.is_file())


def test_upload_names_are_made_safe() -> None:
    assert safe_name("../../etc/passwd.txt") == "passwd.txt"
    assert safe_name("C:\\Users\\me\\Report FINAL.PDF") == "Report FINAL.pdf"
    assert safe_name(".hidden.md") == "hidden.md"
    assert safe_name("a<b>|c;rm -rf.txt") == "a_b_c_rm -rf.txt"
    assert safe_name("...") == "upload"


def test_same_name_upload_gets_a_new_name_and_same_bytes_are_left_alone(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "notes.txt").write_text("The first notes.\n", encoding="utf-8")
    other = _file(tmp_path, "notes.txt", b"Other notes entirely.\n")
    stored = store_upload(seeds, "notes.txt", other, max_bytes=MB)
    assert (stored.source, stored.status) == ("notes (2).txt", "renamed")
    assert (seeds / "notes.txt").read_text(encoding="utf-8") == "The first notes.\n"
    again = store_upload(seeds, "notes.txt", other, max_bytes=MB)
    assert (again.source, again.status) == ("notes (2).txt", "unchanged")
    assert _seeds_listing(seeds) == ["notes (2).txt", "notes.txt"]


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("report.pdf", b"Plain words, not a PDF.\n",
         "report.pdf was not added: it is named .pdf but its content is text (the extension "
         "lies)."),
        ("photo.txt", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
         "photo.txt is not a document the assistant can read (its content is binary data)."),
        ("big.txt", b"word " * (MB // 4),
         "big.txt is 1.2 MB; the upload limit is 1 MB."),
        ("locked.pdf", ENCRYPTED.read_bytes(),
         "locked.pdf was not added: it is an encrypted PDF (it needs a password)."),
        ("blank.md", b"   \n\n", "blank.md was not added: it has no text."),
    ],
    ids=["lying-extension", "binary", "too-large", "encrypted", "empty"],
)  # fmt: skip
def test_bad_uploads_are_refused_in_one_sentence_and_leave_nothing(
    tmp_path: Path, name: str, data: bytes, message: str
) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "kept.txt").write_text("Kept.\n", encoding="utf-8")
    with pytest.raises(BadInputError) as err:
        store_upload(seeds, name, _file(tmp_path, name, data), max_bytes=MB)
    assert err.value.message == message
    assert err.value.hint
    assert _seeds_listing(seeds) == ["kept.txt"]  # no temporary file left behind


def test_upload_without_a_known_extension_is_named_by_its_content(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    stored = store_upload(seeds, "README", _file(tmp_path, "README", b"Read me.\n"), max_bytes=MB)
    assert stored.source == "README.txt"


def test_added_document_is_answerable_after_one_ingest_and_removal_keeps_the_file(
    tmp_path: Path,
) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "a.txt").write_text("The mill closed in 1991 after a fire.\n", encoding="utf-8")
    a = Assistant(seeds_dir=seeds, index_dir=tmp_path / "index")
    a.ingest()
    upload = _file(tmp_path, "bells.md", b"# Bells\n\nThe church bell was cast in 1722 by Ellen "
                   b"Marsh.\n")  # fmt: skip
    assert a.add_document("bells.md", upload).source == "bells.md"
    a.ingest()
    answer = a.ask("Who cast the church bell?")
    assert not answer.abstained and answer.citations[0].source == "bells.md"
    where = a.remove_document("bells.md")
    assert where == (seeds / ".removed" / "bells.md").resolve() and where.exists()
    assert [d.source for d in scan(seeds).docs] == ["a.txt"]
    a.ingest()
    assert all(c.source != "bells.md" for c in a.ask("Who cast the church bell?").citations)
    with pytest.raises(BadInputError):
        remove_document(seeds, "../outside.txt")


def test_ui_refuses_uploads_from_anyone_not_logged_in_when_auth_is_on(tmp_path: Path) -> None:
    pytest.importorskip("gradio")
    from assistant.config import Settings
    from assistant.interfaces.ui import ChatUI

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    fake = SimpleNamespace(
        settings=Settings(seeds_dir=seeds, index_dir=tmp_path / "index", ui_auth="ann:pw"),
        mode="extractive",
        status=lambda: {"indexed": False},
    )
    ui = ChatUI(fake)
    upload = _file(tmp_path, "n.txt", b"Notes.\n")
    html, *_ = ui.upload([str(upload)], SimpleNamespace(username=None), progress=lambda *a, **k: 0)
    assert "Log in to add or remove documents." in html
    assert _seeds_listing(seeds) == []
