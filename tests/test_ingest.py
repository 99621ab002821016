import json
from pathlib import Path

import pytest

from assistant import Assistant, IndexIncompatibleError, SeedsError

DOC_A = "# Rivers\n\nThe Aske river rises on Greyside Moor. It is 30 m wide at the bridge.\n"
DOC_B = "# Bells\n\nThe church bell was cast in 1722 by Ellen Marsh. It weighs 900 kg.\n"


def make(tmp_path: Path) -> tuple[Assistant, Path]:
    seeds = tmp_path / "seeds"
    (seeds / "sub").mkdir(parents=True)
    (seeds / "a.txt").write_text(DOC_A, encoding="utf-8")
    (seeds / "sub" / "b.md").write_text(DOC_B, encoding="utf-8")
    return Assistant(seeds_dir=seeds, index_dir=tmp_path / "index"), seeds


def test_ingest_is_incremental_add_change_delete(tmp_path: Path) -> None:
    a, seeds = make(tmp_path)
    first = a.ingest()
    assert (first.added, first.updated, first.removed, first.unchanged) == (2, 0, 0, 0)
    again = a.ingest()
    assert (again.added, again.updated, again.removed, again.unchanged) == (0, 0, 0, 2)

    (seeds / "sub" / "b.md").write_text(DOC_B.replace("1722", "1731"), encoding="utf-8")
    (seeds / "c.txt").write_text("The mill closed in 1991 after a fire.\n", encoding="utf-8")
    (seeds / "a.txt").unlink()
    s = a.ingest()
    assert (s.added, s.updated, s.removed, s.unchanged) == (1, 1, 1, 0)

    manifest = json.loads((tmp_path / "index" / "manifest.json").read_text())
    assert sorted(manifest["documents"]) == ["c.txt", "sub/b.md"]
    assert manifest["embedding"]["dimension"] == 384
    assert manifest["chunking"] == {"chunk_sentences": 3, "chunk_max_chars": 600}
    # the changed document answers with its new text, the deleted one is gone from answers
    ans = a.ask("In which year was the church bell cast?")
    assert not ans.abstained and "1731" in ans.text
    assert ans.citations[0].source == "sub/b.md"
    assert all(c.source != "a.txt" for c in a.ask("How wide is the Aske river?").citations)
    # only live chunks remain in Chroma
    live = a.store.view(manifest["collection"])
    assert {r.split("@")[0] for r in live.all_ref_doc_ids()} == {"c.txt", "sub/b.md"}


def test_offsets_survive_reingest_of_unrelated_documents(tmp_path: Path) -> None:
    a, seeds = make(tmp_path)
    a.ingest()
    before = a.ask("Who cast the church bell?").citations
    (seeds / "zzz.txt").write_text("Unrelated text about farming. " * 5, encoding="utf-8")
    a.ingest()
    after = a.ask("Who cast the church bell?").citations
    assert before and before == after


def test_binary_file_is_skipped_with_a_warning_and_the_rest_ingested(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    a, seeds = make(tmp_path)
    (seeds / "blob.txt").write_bytes(b"\x00\x01\xff\xfe binary")
    (seeds / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    s = a.ingest()
    assert s.added == 2
    assert set(s.skipped) == {"blob.txt", "latin1.txt"}
    assert "blob.txt" in caplog.text and "latin1.txt" in caplog.text


def test_empty_or_missing_seeds_folder_is_refused_and_index_kept(tmp_path: Path) -> None:
    a, seeds = make(tmp_path)
    a.ingest()
    manifest = (tmp_path / "index" / "manifest.json").read_text()
    for f in seeds.rglob("*.*"):
        f.unlink()
    with pytest.raises(SeedsError, match="No readable"):
        a.ingest()
    assert (tmp_path / "index" / "manifest.json").read_text() == manifest
    with pytest.raises(SeedsError, match="does not exist"):
        Assistant(seeds_dir=tmp_path / "nope", index_dir=tmp_path / "i2").ingest()


def test_index_built_with_other_parameters_is_refused(tmp_path: Path) -> None:
    a, seeds = make(tmp_path)
    a.ingest()
    other = Assistant(seeds_dir=seeds, index_dir=tmp_path / "index", chunk_sentences=5)
    with pytest.raises(IndexIncompatibleError) as err:
        other.ask("Who cast the bell?")
    assert "assistant ingest --rebuild" in str(err.value)
    with pytest.raises(IndexIncompatibleError):
        other.ingest()
    summary = other.ingest(rebuild=True)
    assert summary.added == 2
    assert other.ask("Who cast the church bell?").citations


def test_index_from_an_older_tokenizer_is_refused_with_the_rebuild_hint(tmp_path: Path) -> None:
    import json

    a, seeds = make(tmp_path)
    a.ingest()
    path = tmp_path / "index" / "manifest.json"
    manifest = json.loads(path.read_text())
    del manifest["tokenizer"]  # as written before tokenizer versions were recorded
    path.write_text(json.dumps(manifest))
    fresh = Assistant(seeds_dir=seeds, index_dir=tmp_path / "index")
    with pytest.raises(IndexIncompatibleError) as err:
        fresh.ask("Who cast the bell?")
    assert "tokenizer" in str(err.value) and "older version" in str(err.value)
    assert "assistant ingest --rebuild" in err.value.hint
    assert fresh.ingest(rebuild=True).added == 2


def test_symlink_outside_seeds_is_not_followed(tmp_path: Path) -> None:
    a, seeds = make(tmp_path)
    outside = tmp_path / "secret.txt"
    outside.write_text("The password is swordfish.\n", encoding="utf-8")
    (seeds / "link.txt").symlink_to(outside)
    (seeds / "linked-dir").symlink_to(tmp_path, target_is_directory=True)  # not descended
    summary = a.ingest()
    assert dict(summary.reasons) == {
        "link.txt": "it is a symlink pointing outside the seeds folder (not followed)"
    }
    assert summary.added == 2
    assert (
        "link.txt"
        not in json.loads((tmp_path / "index" / "manifest.json").read_text())["documents"]
    )


def test_documents_without_sentences_and_many_small_ones_ingest_in_shared_batches(
        tmp_path: Path) -> None:
    a, seeds = make(tmp_path)
    (seeds / "heading-only.md").write_text("# Just A Title\n", encoding="utf-8")
    for i in range(40):
        (seeds / f"n{i:02d}.txt").write_text(f"Note {i}: the pump {i} was serviced on day {i}.\n",
                                             encoding="utf-8")
    s = a.ingest()
    assert s.added == 43
    ans = a.ask("When was pump 17 serviced?")
    assert ans.citations and ans.citations[0].source == "n17.txt"


def test_ingest_progress_is_a_tqdm_bar_with_rate_on_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, _ = make(tmp_path)
    a.ingest(progress="always")
    err = capsys.readouterr().err
    assert "Embedding" in err and "/2 [" in err and "doc/s" in err  # count, rate and ETA
    a.ingest(progress=True, rebuild=True)  # not a terminal: no bar
    assert "Embedding" not in capsys.readouterr().err


def test_index_from_an_older_splitter_is_refused_with_the_rebuild_hint(tmp_path: Path) -> None:
    import json

    a, seeds = make(tmp_path)
    a.ingest()
    path = tmp_path / "index" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["splitter"] = 1  # sentences and titles found by the splitter before issue 15
    path.write_text(json.dumps(manifest))
    fresh = Assistant(seeds_dir=seeds, index_dir=tmp_path / "index")
    with pytest.raises(IndexIncompatibleError, match="splitter") as err:
        fresh.ask("Who cast the bell?")
    assert "assistant ingest --rebuild" in str(err.value)
