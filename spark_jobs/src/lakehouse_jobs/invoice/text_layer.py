"""An invoice PDF's text layer, read into lines of cells: what ``invoice.pdf`` parses the layout from.

``extract_pages(data)`` returns each page's characters (``PageText``), ``page_lines(page)`` its lines of
cells. Both the text layer and the layout parse refuse with ``InvoiceParseError`` and a stable ``reason``
(``REASONS``, every reason of either): it lives here, in the module the layout parse imports, so neither
imports the other both ways.

Library: pypdfium2 (PDFium, Chrome's PDF engine, through ctypes), chosen by measurement against
pdfplumber (pdfminer.six, pure Python): ``benchmarks/invoice_parse_bench.py`` parses the same invoices
through ``invoice.pdf`` with either library's characters; pdfplumber alone cost more per page than the
whole budget of ~30 ms per invoice per core. PDFium is not thread-safe: parse in one thread per process
(Spark's Python workers are processes).

How a page is read (every coordinate in points, y growing downwards; step 4, the regions, is
``invoice.pdf``'s):

1. Characters: PDFium's text layer, each character with its loose box (advance width x font ascent and
   descent) and its baseline, turned so that the text stands upright, as a reader turns a page: a page
   drawn sideways with a compensating /Rotate (ISO 32000-1 7.7.3.3) and a page of upright text given a
   rotation by a viewer both read as printed. Whitespace is dropped; spacing is recomputed from the
   geometry. Only painted characters are read: a character whose text render mode paints nothing (3,
   invisible, and 7, clip only: ISO 32000-1 9.3.6) or whose centre lies outside the visible area (the crop
   box within the media box) is set aside. Set-aside text is ignored where it repeats painted text in
   place (a searchable overlay); anywhere else the page is refused (``ocr_text_layer``: the invisible OCR
   layer behind a scanned image, a hidden member number). Painted is not yet seen: a character is seen
   when the page rendered with its text differs from the page rendered without it inside the character's
   box (``_seen``): white on white, covered by a shape or an image, clipped by a path, in an optional-content
   layer that is off, or smaller than MIN_TEXT_HEIGHT, it is set aside like unpainted text.
2. Lines: characters whose baselines are within 0.3 of a character height of the line's first.
3. Cells: a line's characters left to right, split where the gap exceeds 0.5 character heights (columns
   are further apart than that; a space is about 0.25); a gap over 0.15 heights is a space inside a cell.
"""

from __future__ import annotations

import ctypes
import math
from collections import Counter
from dataclasses import dataclass
from typing import NamedTuple

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

REASONS = frozenset({
    # the text layer's (this module)
    "not_pdf",                 # no "%PDF-" header in the first 1024 bytes
    "truncated",               # PDFium cannot load it and no "%%EOF" ends it (ISO 32000-1 7.5.5): it was cut
    "encrypted",               # needs a password (or a security handler PDFium lacks)
    "corrupt_pdf",             # PDFium cannot load the document or a page
    "too_many_pages",          # more than max_pages pages
    "no_text_layer",           # a page without text (a scan: an image only)
    "ocr_text_layer",          # text that is not painted (invisible, or off the page) and not also painted
    "unreadable_text",         # text whose characters PDFium cannot map to Unicode
    # the layout's (invoice.pdf)
    "layout_unrecognised",     # text the layout does not place, an unknown label, a missing table header
    "required_field_missing",  # detail: the field
    "duplicate_field",         # a label printed twice, or two different balances
    "unparseable_number",      # money, quantity or member number not written as the layout writes them
    "unparseable_date",
    "unknown_currency",        # a money prefix outside CURRENCY_PREFIXES
    "mixed_currency",          # amounts of one invoice in different currencies
    "page_sequence",           # "Page i of n" or a continued invoice number disagrees with the document
})


MAX_PAGES = 20

LINE_TOLERANCE = 0.3    # x character height: baselines closer than this are one line
CELL_GAP = 0.5          # x character height: a wider gap starts a new cell (a space is ~0.25)
SPACE_GAP = 0.15        # x character height: a wider gap inside a cell is a space

# the ink check (_seen): pages rendered at 72 dpi in grey; a character shows when some pixel of its box
# changes by at least INK_CONTRAST of 255 between the renders with and without text; text under
# MIN_TEXT_HEIGHT points (4-point type is about the smallest a printed invoice uses) is unreadable as printed
INK_SCALE = 1.0
INK_CONTRAST = 24
MIN_TEXT_HEIGHT = 2.0

_WHITESPACE = frozenset((0x20, 0x0D, 0x0A, 0x09, 0xA0, 0x2002, 0x2003, 0x2009, 0x3000))
# text render modes that paint nothing (ISO 32000-1 Table 106): invisible, and add-to-clip only
_UNPAINTED_MODES = frozenset((pdfium_c.FPDF_TEXTRENDERMODE_INVISIBLE, pdfium_c.FPDF_TEXTRENDERMODE_CLIP))


class InvoiceParseError(ValueError):
    """The PDF is not an invoice this parser can read exactly; ``reason`` is one of ``REASONS``."""

    def __init__(self, reason: str, detail: str = "") -> None:
        assert reason in REASONS, reason
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class Char(NamedTuple):
    """One character: ``x0``/``x1`` its loose box's horizontal extent, ``baseline`` its origin's y, ``height``
    its loose box's height (about the font size), all in points from the page's top-left corner. (Named
    tuples, not dataclasses: a page has hundreds of them, and they are built in the parser's hot loop.)"""

    text: str
    x0: float
    x1: float
    baseline: float
    height: float


@dataclass(frozen=True)
class PageText:
    width: float
    height: float
    chars: tuple[Char, ...]


class Cell(NamedTuple):
    """Characters of one line close enough together to be one value: "HK$3,380.00", "Payment Terms:"."""

    text: str
    x0: float
    x1: float
    baseline: float
    height: float


@dataclass(slots=True)
class _Read:
    """A character as PDFium reads it, in page points (y up): its loose box, its origin, and whether it is
    painted (a paint mode, its centre on the visible area; then set to whether ``_seen`` sees it)."""

    text: str
    left: float
    right: float
    bottom: float
    top: float
    ox: float
    oy: float
    painted: bool


def _check_container(data: bytes) -> None:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"parse_invoice_pdf takes bytes, not {type(data).__name__}")
    if b"%PDF-" not in bytes(data[:1024]):
        raise InvoiceParseError("not_pdf", f"no %PDF- header in the first 1024 of {len(data)} bytes")


def extract_pages(data: bytes, max_pages: int = MAX_PAGES) -> list[PageText]:
    """PDFium's characters of every page of ``data``; raises InvoiceParseError for what is not a readable
    PDF with a text layer (not_pdf, truncated, encrypted, corrupt_pdf, too_many_pages, no_text_layer,
    unreadable_text)."""
    _check_container(data)
    try:
        pdf = pdfium.PdfDocument(bytes(data))
    except pdfium.PdfiumError as e:
        if getattr(e, "err_code", None) in (pdfium_c.FPDF_ERR_PASSWORD, pdfium_c.FPDF_ERR_SECURITY):
            raise InvoiceParseError("encrypted", str(e)) from None
        # judged only once PDFium refuses the file: producers pad after %%EOF, and a file PDFium opens is
        # read (a cut that PDFium repairs loses pages or lines, which the page and arithmetic checks catch)
        if b"%%EOF" not in bytes(data[-1024:]):
            raise InvoiceParseError("truncated", f"no %%EOF marker in the last 1024 of {len(data)} bytes, and "
                                                 f"PDFium cannot load it: {e}")
        raise InvoiceParseError("corrupt_pdf", str(e)) from None
    try:
        count = len(pdf)
        if count == 0:
            raise InvoiceParseError("corrupt_pdf", "the document has no pages")
        if count > max_pages:
            raise InvoiceParseError("too_many_pages", f"{count} pages, at most {max_pages}")
        return [_page_chars(pdf, i) for i in range(count)]
    finally:
        pdf.close()


def _page_chars(pdf: pdfium.PdfDocument, index: int) -> PageText:
    try:
        page = pdf[index]
        textpage = page.get_textpage()
    except pdfium.PdfiumError as e:
        raise InvoiceParseError("corrupt_pdf", f"page {index + 1}: {e}") from None
    try:
        # the visible area: the crop box clipped to the media box, inherited and normalised (FPDF_GetPageBoundingBox)
        left, bottom, right, top = page.get_bbox()
        raw = textpage.raw
        box = pdfium_c.FS_RECTF()
        ox, oy = ctypes.c_double(), ctypes.c_double()
        unicode, loose_box, origin = (pdfium_c.FPDFText_GetUnicode, pdfium_c.FPDFText_GetLooseCharBox,
                                      pdfium_c.FPDFText_GetCharOrigin)
        render_mode, text_object = pdfium_c.FPDFTextObj_GetTextRenderMode, pdfium_c.FPDFText_GetTextObject
        read, turns = [], Counter()
        for i in range(pdfium_c.FPDFText_CountChars(raw)):
            code = unicode(raw, i)
            if code in _WHITESPACE:  # PDFium's generated spaces and line breaks too: spacing comes from geometry
                continue
            if code < 0x20 or code == 0xFFFD or 0xD800 <= code <= 0xDFFF:
                raise InvoiceParseError("unreadable_text", f"page {index + 1}: character {code:#x} has no Unicode")
            loose_box(raw, i, box)
            origin(raw, i, ox, oy)
            # seen only with its centre on the visible area: a glyph that merely touches the edge shows no ink
            on_page = left < (box.left + box.right) / 2 < right and bottom < (box.bottom + box.top) / 2 < top
            painted = on_page and render_mode(text_object(raw, i)) not in _UNPAINTED_MODES
            read.append(_Read(chr(code), box.left, box.right, box.bottom, box.top, ox.value, oy.value, painted))
            if painted:  # PDFium's angle of the glyph's baseline, clockwise: the quarter turn that sets it upright
                turns[(4 - round(pdfium_c.FPDFText_GetCharAngle(raw, i) / (math.pi / 2))) % 4] += 1
        # read the way the painted text stands upright, as a reader turns a page: the /Rotate that a producer
        # added to turned content compensates it; a rotation set on upright content ("rotate page" in a
        # viewer) does not; hidden text, in whatever direction, does not choose
        quarter_turns = turns.most_common(1)[0][0] if turns else page.get_rotation() // 90 % 4
        if turns:
            painted_chars = [r for r in read if r.painted]
            boxes = [(r.left, r.right, r.bottom, r.top) for r in painted_chars]
            for r, seen in zip(painted_chars, _seen(page, boxes), strict=True):
                r.painted = seen
    finally:
        textpage.close()
        page.close()
    display = _Display(quarter_turns, left, bottom, right, top)
    chars, unpainted = [], []
    for r in read:
        (chars if r.painted else unpainted).append(display.char(r))
    hidden = _not_repeated(unpainted, chars)
    if hidden:
        raise InvoiceParseError("ocr_text_layer", f"page {index + 1}: {hidden} characters nobody sees (invisible"
                                f" or off the page) that no painted text repeats" + ("" if chars else
                                "; the page paints no text at all (a scan with its OCR layer?)"))
    if not chars:
        raise InvoiceParseError("no_text_layer", f"page {index + 1} has no text (a scanned image?)")
    return PageText(display.width, display.height, tuple(chars))


def _seen(page: pdfium.PdfPage, boxes: list[tuple[float, float, float, float]]) -> list[bool]:
    """For each painted character's loose box (left, right, bottom, top in page points), whether a reader
    sees it: the page rendered with and without its text (every text object's render mode set to
    invisible, forms included) differs inside the box, and it is at least MIN_TEXT_HEIGHT tall. Changes the
    page's objects: call it last."""
    import numpy as np  # the Databricks runtime's; only the parser needs it

    raw = page.raw
    width = max(1, round(pdfium_c.FPDF_GetPageWidthF(raw) * INK_SCALE))
    height = max(1, round(pdfium_c.FPDF_GetPageHeightF(raw) * INK_SCALE))
    with_text = _render(raw, width, height)
    for obj in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_TEXT], max_depth=15):
        pdfium_c.FPDFTextObj_SetTextRenderMode(obj.raw, pdfium_c.FPDF_TEXTRENDERMODE_INVISIBLE)
    ink = np.abs(with_text.astype(np.int16) - _render(raw, width, height)) >= INK_CONTRAST
    dx, dy = ctypes.c_int(), ctypes.c_int()

    def device(x: float, y: float) -> tuple[int, int]:
        pdfium_c.FPDF_PageToDevice(raw, 0, 0, width, height, 0, x, y, dx, dy)
        return dx.value, dy.value

    seen = []
    for left, right, bottom, top in boxes:
        (ax, ay), (bx, by) = device(left, bottom), device(right, top)
        x0, x1 = max(0, min(ax, bx)), min(width, max(ax, bx) + 1)
        y0, y1 = max(0, min(ay, by)), min(height, max(ay, by) + 1)
        seen.append(top - bottom >= MIN_TEXT_HEIGHT and x0 < x1 and y0 < y1 and bool(ink[y0:y1, x0:x1].any()))
    return seen


def _render(page: ctypes.c_void_p, width: int, height: int):  # noqa: ANN202 - a numpy array, imported lazily
    """The page in grey on white, `width` x `height` pixels (one byte each, row by row)."""
    import numpy as np

    bitmap = pdfium_c.FPDFBitmap_Create(width, height, 0)
    try:
        pdfium_c.FPDFBitmap_FillRect(bitmap, 0, 0, width, height, 0xFFFFFFFF)
        pdfium_c.FPDF_RenderPageBitmap(bitmap, page, 0, 0, width, height, 0, pdfium_c.FPDF_GRAYSCALE)
        stride = pdfium_c.FPDFBitmap_GetStride(bitmap)
        buffer = ctypes.cast(pdfium_c.FPDFBitmap_GetBuffer(bitmap), ctypes.POINTER(ctypes.c_uint8))
        pixels = np.ctypeslib.as_array(buffer, shape=(height, stride))[:, : width * 4].reshape(height, width, 4)
        return pixels[:, :, 0].copy()  # BGRx, grey: every channel the same
    finally:
        pdfium_c.FPDFBitmap_Destroy(bitmap)


class _Display:
    """Page coordinates (points, y up, PDFium's) to display coordinates (points from the top-left corner of
    the crop box as a reader sees it, y down), for a page turned `quarter_turns` x 90 degrees clockwise."""

    def __init__(self, quarter_turns: int, left: float, bottom: float, right: float, top: float):
        w, h = right - left, top - bottom
        self.width, self.height = (h, w) if quarter_turns % 2 else (w, h)
        turn = [lambda x, y: (x, h - y), lambda x, y: (y, x), lambda x, y: (w - x, y),
                lambda x, y: (h - y, w - x)][quarter_turns]
        self.point = lambda x, y: turn(x - left, y - bottom)

    def char(self, r: _Read) -> Char:
        (ax, ay), (bx, by) = self.point(r.left, r.bottom), self.point(r.right, r.top)
        return Char(r.text, min(ax, bx), max(ax, bx), self.point(r.ox, r.oy)[1], abs(ay - by))


def _not_repeated(unpainted: list[Char], painted: list[Char]) -> int:
    """How many unpainted characters no painted character of the same text repeats in place (centre within
    half a height): an invisible copy laid over printed text to make it searchable adds nothing a reader
    does not see; anything else is hidden text."""
    by_text: dict[str, list[Char]] = {}
    for p in painted:
        by_text.setdefault(p.text, []).append(p)
    return sum(1 for c in unpainted if not any(
        abs(p.baseline - c.baseline) <= c.height / 2 and abs((p.x0 + p.x1) / 2 - (c.x0 + c.x1) / 2) <= c.height / 2
        for p in by_text.get(c.text, ())))


def page_lines(page: PageText) -> list[list[Cell]]:
    """The page's lines top to bottom, each a list of cells left to right (module docstring, steps 2-3)."""
    chars = sorted(page.chars, key=lambda c: c.baseline)
    groups: list[list[Char]] = []
    for c in chars:
        if groups and c.baseline - groups[-1][0].baseline <= LINE_TOLERANCE * max(c.height, groups[-1][0].height):
            groups[-1].append(c)
        else:
            groups.append([c])
    lines = []
    for group in groups:
        group.sort(key=lambda c: c.x0)
        cells: list[list[Char]] = [[group[0]]]
        for prev, c in zip(group, group[1:]):
            if c.x0 - prev.x1 > CELL_GAP * max(c.height, prev.height):
                cells.append([c])
            else:
                cells[-1].append(c)
        lines.append([_cell(cs) for cs in cells])
    return lines


def _cell(chars: list[Char]) -> Cell:
    parts = [chars[0].text]
    for prev, c in zip(chars, chars[1:]):
        if c.x0 - prev.x1 > SPACE_GAP * max(c.height, prev.height):
            parts.append(" ")
        parts.append(c.text)
    return Cell("".join(parts), chars[0].x0, max(c.x1 for c in chars), min(c.baseline for c in chars),
                max(c.height for c in chars))

