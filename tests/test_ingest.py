"""`rag add`: a PDF with Chinese text goes into the corpus; its text, pages and citations round-trip."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from rag.errors import ConversionError
from rag.ingest import add_file

from .conftest import ROOT, HashEncoder

#: CJK fonts with TrueType outlines (reportlab cannot embed the CFF outlines of Noto CJK's .ttc).
CJK_FONTS = [
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/truetype/arphic/uming.ttc", 0),
]

PAGES = [  # each page longer than a passage's minimum, so each is cited on its own
    ["东盟合作展望", "东盟在地区合作中发挥中心作用，各方支持东盟共同体建设。", "东亚峰会、东盟地区论坛等机制以东盟为中心运转。", "中国坚定支持东盟在区域架构中的中心地位。", "各国应当尊重东盟方式，通过协商一致推进合作。"],
    ["数字经济", "数字经济合作是新的增长点，各国应加强数据治理对话。", "跨境数据流动规则需要对接，数字基础设施需要互联互通。", "中小企业可以借助电子商务平台进入区域市场。", "数字技能培训能够帮助更多青年参与数字经济。"],
    ["气候变化", "气候变化是共同挑战，亚太国家需要在减排方面共同应对。", "适应气候变化的基础设施投资应当优先考虑沿海城市。", "绿色金融可以为能源转型提供长期资金支持。", "区域碳市场的合作仍处于探索阶段，需要循序渐进。"],
]


def _cjk_font() -> str:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    for path, index in CJK_FONTS:
        if Path(path).is_file():
            pdfmetrics.registerFont(TTFont("TestCJK", path, subfontIndex=index))
            return "TestCJK"
    pytest.fail(
        "no CJK TrueType font to build the test PDF; install one: apt-get install -y fonts-wqy-zenhei "
        f"(looked for {', '.join(p for p, _ in CJK_FONTS)})"
    )


def make_pdf(path: Path, pages=PAGES, title="东盟合作展望", encrypt: str | None = None, text: bool = True) -> Path:
    from reportlab.pdfgen import canvas

    font = _cjk_font()
    c = canvas.Canvas(str(path), encrypt=encrypt)
    c.setTitle(title)
    for lines in pages:
        if text:
            c.setFont(font, 12)
            for i, line in enumerate(lines):
                c.drawString(72, 750 - 20 * i, line)
        else:  # a "scan": shapes, no text layer
            c.rect(72, 600, 300, 100, fill=1)
        c.showPage()
    c.save()
    return path


@pytest.fixture
def pdf(tmp_path) -> Path:
    return make_pdf(tmp_path / "东盟报告.pdf")


def test_pdf_text_pages_and_metadata_round_trip(pdf, tmp_path):
    corpus = tmp_path / "corpus"
    added = add_file(pdf, corpus)
    text = added.text_path.read_text(encoding="utf-8")
    meta = json.loads(added.meta_path.read_text(encoding="utf-8"))
    assert added.text_path == corpus / "东盟报告.txt" and added.meta_path == corpus / "东盟报告.meta.json"
    assert meta["title"] == "东盟合作展望" and meta["source_file"] == "东盟报告.pdf"
    assert meta["source_sha256"] == hashlib.sha256(pdf.read_bytes()).hexdigest()
    assert meta["pages"] == 3 and len(meta["page_starts"]) == 3
    for start, lines in zip(meta["page_starts"], PAGES):
        assert text[start:].startswith("\n".join(lines))  # each page starts where the offsets say


def test_citations_from_a_pdf_carry_page_numbers_and_exact_offsets(pdf, tmp_path):
    from rag.assistant import Assistant
    from rag.cite import hit_to_dict, page_label

    corpus = tmp_path / "corpus"
    a = Assistant(corpus_dir=corpus, index_dir=tmp_path / "idx", encoder=HashEncoder(), on_notice=lambda m: None)
    a.add(pdf)
    text = (corpus / "东盟报告.txt").read_text(encoding="utf-8")
    answer = a.ask("数字经济合作与数据治理对话", k=3, mode="bm25")
    top = hit_to_dict(answer.hits[0])
    assert "数据治理" in top["text"]
    assert text[top["start"] : top["end"]] == top["text"]
    assert top["page"] == 2 and top["pages"] == [2, 2]
    assert page_label(answer.hits[0].passage) == "p. 2"
    by_page = {hit_to_dict(h)["page"] for h in a.ask("气候变化 减排", k=3, mode="bm25").hits}
    assert 3 in by_page


def test_rag_add_and_ask_print_the_page(pdf, tmp_path):
    corpus = tmp_path / "corpus"
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "rag", *args], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    r = run("add", str(pdf), "--corpus", str(corpus))
    assert r.returncode == 0, r.stderr
    assert "东盟报告.txt" in r.stdout and "3 page(s)" in r.stdout
    r = run("add", str(pdf), "--corpus", str(corpus))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "already exists" in r.stderr and "--force" in r.stderr
    assert run("add", str(pdf), "--corpus", str(corpus), "--force").returncode == 0


def test_a_file_that_is_not_a_pdf_is_refused_in_one_line(tmp_path):
    fake = tmp_path / "report.pdf"
    fake.write_text("这不是PDF", encoding="utf-8")
    with pytest.raises(ConversionError, match="is not a PDF"):
        add_file(fake, tmp_path / "corpus")
    with pytest.raises(ConversionError, match="does not exist"):
        add_file(tmp_path / "missing.pdf", tmp_path / "corpus")
    odd = tmp_path / "report.odt"
    odd.write_bytes(b"x")
    with pytest.raises(ConversionError, match="takes .pdf"):
        add_file(odd, tmp_path / "corpus")
    assert not (tmp_path / "corpus").exists() or not any((tmp_path / "corpus").iterdir())


def test_an_encrypted_pdf_is_refused(tmp_path):
    locked = make_pdf(tmp_path / "locked.pdf", encrypt="secret")
    with pytest.raises(ConversionError, match="encrypted"):
        add_file(locked, tmp_path / "corpus")


def test_a_pdf_without_a_text_layer_is_refused(tmp_path):
    scan = make_pdf(tmp_path / "scan.pdf", text=False)
    with pytest.raises(ConversionError, match="no text layer"):
        add_file(scan, tmp_path / "corpus")


def test_a_damaged_pdf_is_refused(pdf, tmp_path):
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(pdf.read_bytes()[:300])
    with pytest.raises(ConversionError):
        add_file(broken, tmp_path / "corpus")


def test_an_existing_name_is_kept_unless_replaced(pdf, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "东盟报告.md").write_text("# 旧的\n\n旧文本。\n", encoding="utf-8")
    with pytest.raises(ConversionError, match="already exists"):
        add_file(pdf, corpus)
    assert (corpus / "东盟报告.md").read_text(encoding="utf-8").startswith("# 旧的")
    add_file(pdf, corpus, overwrite=True)
    assert sorted(p.name for p in corpus.iterdir()) == ["东盟报告.meta.json", "东盟报告.txt"]


def test_docx_headings_become_markdown_sections(tmp_path):
    import docx

    from rag.chunking import split_passages
    from rag.corpus import load_document

    d = docx.Document()
    d.add_heading("合作报告", level=1)
    d.add_heading("数字经济", level=2)
    d.add_paragraph("数字经济合作是新的增长点，各国应加强数据治理对话与规则对接，推动跨境数据安全流动。")
    src = tmp_path / "合作.docx"
    d.save(src)
    added = add_file(src, tmp_path / "corpus")
    assert added.text_path.name == "合作.md"
    doc = load_document(added.text_path, added.text_path.parent)
    passages = split_passages(doc)
    assert [p.section for p in passages] == [("合作报告", "数字经济")]
    assert doc.info.title == "合作报告" and passages[0].pages is None


def test_a_markdown_report_is_copied_with_its_own_title(tmp_path):
    src = tmp_path / "经济.md"
    src.write_text("版次: 头版（v1）\n日期: 2025-12-20\n主题: 2025年经济展望\n\n# 2025年经济展望\n\n## 摘要\n经济稳中有进。\n", encoding="utf-8")
    added = add_file(src, tmp_path / "corpus")
    assert added.text_path.read_bytes() == src.read_bytes()
    assert added.title == "2025年经济展望" and added.pages == 0


def test_a_pdf_without_a_real_title_is_named_by_its_first_line(tmp_path):
    added = add_file(make_pdf(tmp_path / "r.pdf", title="untitled"), tmp_path / "corpus")
    assert added.title == PAGES[0][0]
