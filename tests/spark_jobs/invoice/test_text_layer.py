"""The text layer reads what a reader sees (lakehouse_jobs.invoice.text_layer; issue 24 item 2): text that is
not painted (invisible render mode, off the page) refuses the page unless it repeats painted text in place,
and a page drawn sideways with a compensating /Rotate reads as displayed. Each PDF is a generated invoice
changed with PDFium's own editing API, as another producer would have written it."""

from __future__ import annotations

import ctypes
import io

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
import pytest

from dev.invoice_pdfs import generate_invoices, render_invoice_pdf, scanned_pdf
from lakehouse_jobs.invoice.pdf import parse_invoice_pdf
from lakehouse_jobs.invoice.text_layer import InvoiceParseError, extract_pages, page_lines

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def good() -> bytes:
    return render_invoice_pdf(generate_invoices(1, seed=5, member_numbers=[123456789012])[0])


def saved(pdf: pdfium.PdfDocument) -> bytes:
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def with_text(data: bytes, text: str, x: float, y: float, mode: int = pdfium_c.FPDF_TEXTRENDERMODE_FILL, *,
              size: float = 10, grey: int = 0) -> bytes:
    """`data` with `text` added to its first page at (x, y) (points, PDF space), in text render mode `mode`,
    `size` points, filled in `grey` (0 black, 255 white)."""
    pdf = pdfium.PdfDocument(data)
    page = pdf[0]
    obj = pdfium_c.FPDFPageObj_NewTextObj(pdf.raw, b"Helvetica", ctypes.c_float(size))
    buffer = ctypes.create_string_buffer((text + "\0").encode("utf-16-le"))
    assert pdfium_c.FPDFText_SetText(obj, ctypes.cast(buffer, ctypes.POINTER(pdfium_c.FPDF_WCHAR)))
    pdfium_c.FPDFPageObj_Transform(obj, 1, 0, 0, 1, x, y)
    assert pdfium_c.FPDFTextObj_SetTextRenderMode(obj, mode)
    assert pdfium_c.FPDFPageObj_SetFillColor(obj, grey, grey, grey, 255)
    pdfium_c.FPDFPage_InsertObject(page.raw, obj)
    assert pdfium_c.FPDFPage_GenerateContent(page.raw)
    return saved(pdf)


def reason(data: bytes) -> str:
    with pytest.raises(InvoiceParseError) as e:
        parse_invoice_pdf(data)
    return e.value.reason


def test_invisible_text_refuses_the_page(good):
    # a member number only a text extractor would see
    assert reason(with_text(good, "Member ID: 999999999999", 300, 20, pdfium_c.FPDF_TEXTRENDERMODE_INVISIBLE)) \
        == "ocr_text_layer"
    assert reason(with_text(good, "42.00", 300, 20, pdfium_c.FPDF_TEXTRENDERMODE_CLIP)) == "ocr_text_layer"


def with_white_box(data: bytes, x: float, y: float, w: float, h: float) -> bytes:
    """`data` with a white rectangle painted over (x, y, w, h) of its first page, after everything else."""
    pdf = pdfium.PdfDocument(data)
    page = pdf[0]
    rect = pdfium_c.FPDFPageObj_CreateNewRect(x, y, w, h)
    assert pdfium_c.FPDFPageObj_SetFillColor(rect, 255, 255, 255, 255)
    assert pdfium_c.FPDFPath_SetDrawMode(rect, pdfium_c.FPDF_FILLMODE_WINDING, False)
    pdfium_c.FPDFPage_InsertObject(page.raw, rect)
    assert pdfium_c.FPDFPage_GenerateContent(page.raw)
    return saved(pdf)


def test_painted_text_nobody_sees_refuses_the_page(good):
    """Painted, but not visible: white on white, too small to read, or painted over. The worst case: the
    member number prints 123456789012 and a white box over its last four digits shows 12345678, which is
    another member's card."""
    # in black the same text is read (and then not placed by the layout): what differs is only what shows
    assert reason(with_text(good, "Member ID: 999999999999", 300, 20)) == "layout_unrecognised"
    assert reason(with_text(good, "Member ID: 999999999999", 300, 20, grey=255)) == "ocr_text_layer"
    assert reason(with_text(good, "Member ID: 999999999999", 300, 20, size=1)) == "ocr_text_layer"
    page = extract_pages(good)[0]
    cell = next(c for line in page_lines(page) for c in line if c.text == "123456789012")
    last_four = [c for c in page.chars if c.baseline == cell.baseline and c.x0 >= cell.x0][-4:]
    hidden = with_white_box(good, last_four[0].x0, page.height - cell.baseline - 3,
                            cell.x1 - last_four[0].x0 + 1, cell.height + 4)
    with pytest.raises(InvoiceParseError, match="nobody sees") as e:
        parse_invoice_pdf(hidden)
    assert e.value.reason == "ocr_text_layer"


def test_text_off_the_page_refuses_the_page(good):
    assert reason(with_text(good, "Member ID: 999999999999", -400, 300)) == "ocr_text_layer"


def test_an_invisible_copy_over_the_printed_text_is_ignored(good):
    """A searchable overlay: every hidden character repeats a painted one in place (here 3 pt higher, as OCR
    places it; PDFium itself drops only copies within about 2 pt). A copy that does not sit on the printed text is
    hidden text."""
    painted = with_text(good, "PAID", 300, 20)
    both = with_text(painted, "PAID", 300, 23, pdfium_c.FPDF_TEXTRENDERMODE_INVISIBLE)
    assert extract_pages(both) == extract_pages(painted)
    assert reason(with_text(painted, "PAID", 300, 40, pdfium_c.FPDF_TEXTRENDERMODE_INVISIBLE)) == "ocr_text_layer"


def test_a_scan_with_an_ocr_layer_is_not_read_from_the_ocr(good):
    scan = scanned_pdf(good)
    assert reason(scan) == "no_text_layer"
    ocr = with_text(scan, "INVOICE Total: $1.00", 40, 700, pdfium_c.FPDF_TEXTRENDERMODE_INVISIBLE)
    with pytest.raises(InvoiceParseError, match="paints no text at all") as e:
        parse_invoice_pdf(ocr)
    assert e.value.reason == "ocr_text_layer"


@pytest.mark.parametrize("quarter_turns", [1, 2, 3])
def test_a_page_drawn_turned_with_a_compensating_rotate_reads_as_displayed(good, quarter_turns):
    pdf = pdfium.PdfDocument(good)
    for page in pdf:
        w, h = page.get_size()
        # content turned counter-clockwise by what /Rotate turns back clockwise (ISO 32000-1 8.3.2 matrices)
        a, b, c, d, e, f = {1: (0, 1, -1, 0, h, 0), 2: (-1, 0, 0, -1, w, h), 3: (0, -1, 1, 0, 0, w)}[quarter_turns]
        pdfium_c.FPDFPage_TransFormWithClip(page.raw, pdfium_c.FS_MATRIX(a, b, c, d, e, f), None)
        size = (h, w) if quarter_turns % 2 else (w, h)
        page.set_mediabox(0, 0, *size)
        page.set_cropbox(0, 0, *size)
        page.set_rotation(90 * quarter_turns)
    turned = saved(pdf)
    assert pdfium.PdfDocument(turned)[0].get_rotation() == 90 * quarter_turns
    assert parse_invoice_pdf(turned) == parse_invoice_pdf(good)


@pytest.mark.parametrize("quarter_turns", [1, 2, 3])
def test_upright_text_on_a_page_a_viewer_rotated_reads_as_printed(good, quarter_turns):
    pdf = pdfium.PdfDocument(good)
    for page in pdf:
        page.set_rotation(90 * quarter_turns)
    assert parse_invoice_pdf(saved(pdf)) == parse_invoice_pdf(good)


def test_the_visible_area_is_the_normalised_crop_box_within_the_media_box(good):
    # a box may name either pair of opposite corners (ISO 32000-1 7.9.5)
    swapped = good.replace(b"/MediaBox [ 0 0 612 792 ]", b"/MediaBox [ 612 792 0 0 ]")
    assert swapped != good and parse_invoice_pdf(swapped) == parse_invoice_pdf(good)
    # a crop box inherited from the page tree (ISO 32000-1 7.7.3.4) showing the top half only: the totals
    # at the bottom are not seen
    top_half = good.replace(b"/Type /Pages\n", b"/Type /Pages /CropBox [0 396 612 792]\n", 1)
    assert reason(top_half) == "ocr_text_layer"


def test_a_glyph_that_only_touches_the_page_edge_is_not_read(good):
    assert reason(with_text(good, "7", 611.8, 300)) == "ocr_text_layer"
