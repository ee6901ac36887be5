"""Files as documents: ids, titles, sections."""

from __future__ import annotations

from pathlib import Path

from ragplane.cli.documents import batches, document_for, find_files, select, title_of


def test_rst_title_is_found_under_or_between_rules() -> None:
    assert title_of("\n:mod:`venv` --- Creation\n=========================\n\ntext", "x") == (
        "mod:`venv` --- Creation"
    )
    assert title_of("*****\nTitle\n*****\n", "x") == "Title"
    assert title_of("# Markdown title\nbody", "x") == "Markdown title"
    assert title_of("no title here", "fallback") == "fallback"


def test_document_id_is_the_path_under_the_root(tmp_path: Path) -> None:
    (tmp_path / "library").mkdir()
    page = tmp_path / "library" / "venv.rst.txt"
    page.write_text("venv\n====\n\nCreates environments.")
    document = document_for(page, tmp_path)
    assert document.document_id == "library/venv.rst.txt"
    assert document.title == "venv"
    assert document.metadata["section"] == "library"


def test_batches_hold_at_most_the_given_documents(tmp_path: Path) -> None:
    files = []
    for n in range(5):
        path = tmp_path / f"{n}.md"
        path.write_text(f"document {n}")
        files.append(path)
    sizes = [len(batch) for batch in batches(files, tmp_path, max_documents=2, max_chars=10_000)]
    assert sizes == [2, 2, 1]


def test_select_keeps_the_folders_and_pages_named_by_prefix(tmp_path: Path) -> None:
    for page in ("tutorial/venv.rst.txt", "library/venv.rst.txt", "library/os.rst.txt"):
        (tmp_path / page).parent.mkdir(exist_ok=True)
        (tmp_path / page).write_text(page)
    files = find_files(tmp_path)
    chosen = select(files, tmp_path, ["tutorial/", "library/venv.rst.txt"])
    assert [path.relative_to(tmp_path).as_posix() for path in chosen] == [
        "library/venv.rst.txt",
        "tutorial/venv.rst.txt",
    ]
    assert select(files, tmp_path, []) == files
