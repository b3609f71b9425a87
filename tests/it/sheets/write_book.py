"""Writes the workbooks of tests/it/spreadsheets.rs with real writers: openpyxl (xlsx) and odfpy (ods), and
XLSB, which no common library writes (LibreOffice cannot save it either), with the standard library only,
record by record as [MS-XLSB] lays them out.

    write_book.py places xlsx|ods|xlsb OUT   an empty first sheet, then a sheet whose header starts at B3
    write_book.py empty xlsx OUT        two sheets, neither with a value
    write_book.py sparse xlsx OUT       two cells, at A1 and at XFD1048576 (the last cell a sheet has)
"""
import datetime
import struct
import sys
import zipfile

HEADER = ["name", "visits", "score", "day", "seen", "lat", "lon", "ratio"]
ROWS = [
    ["Sol", 10, 1.5, datetime.date(2024, 5, 17), datetime.datetime(2024, 5, 17, 13, 45, 30), 40.41, -3.70, 0.5],
    ["Opera", 20, 2.25, datetime.date(2024, 6, 1), datetime.datetime(2024, 6, 1, 8, 0, 0), 40.42, -3.71, "#DIV/0!"],
    ["Retiro", 30, 3.0, datetime.date(2023, 12, 31), datetime.datetime(2023, 12, 31, 23, 59, 59), 40.415, -3.684, 2],
]


def places_xlsx(out):
    import openpyxl

    book = openpyxl.Workbook()
    book.active.title = "Cover"
    sheet = book.create_sheet("Places")
    for c, name in enumerate(HEADER):
        sheet.cell(row=3, column=2 + c, value=name)
    for r, row in enumerate(ROWS):
        for c, value in enumerate(row):
            cell = sheet.cell(row=4 + r, column=2 + c)
            if value == "#DIV/0!":
                cell.value, cell.data_type = value, "e"
            else:
                cell.value = value
            if isinstance(value, datetime.datetime):
                cell.number_format = "yyyy-mm-dd hh:mm:ss"
            elif isinstance(value, datetime.date):
                cell.number_format = "yyyy-mm-dd"
    book.save(out)


def places_ods(out):
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    doc = OpenDocumentSpreadsheet()
    doc.spreadsheet.addElement(Table(name="Cover"))
    table = Table(name="Places")
    for _ in range(2):
        table.addElement(TableRow())

    def row_of(cells):
        row = TableRow()
        row.addElement(TableCell())  # column A is blank
        for cell in cells:
            row.addElement(cell)
        return row

    def cell(value):
        if isinstance(value, datetime.datetime):
            return TableCell(valuetype="date", datevalue=value.isoformat())
        if isinstance(value, datetime.date):
            return TableCell(valuetype="date", datevalue=value.isoformat())
        if isinstance(value, (int, float)):
            c = TableCell(valuetype="float", value=value)
        elif value == "#DIV/0!":
            c = TableCell()  # an ODS file keeps a formula's error as its formula only
            return c
        else:
            c = TableCell(valuetype="string")
        c.addElement(P(text=str(value)))
        return c

    table.addElement(row_of([cell(name) for name in HEADER]))
    for row in ROWS:
        table.addElement(row_of([cell(v) for v in row]))
    doc.spreadsheet.addElement(table)
    doc.save(out)


# XLSB: a zip of XML relationships and BIFF12 record streams ([MS-XLSB] 2.1.4). A record is its type (a
# varint of 1-2 bytes), its size (a varint of 1-4 bytes), then its data; numbers are little-endian.
BRT_ROW_HDR, BRT_CELL_RK, BRT_CELL_ERROR, BRT_CELL_REAL, BRT_CELL_ISST = 0x0000, 0x0002, 0x0003, 0x0005, 0x0007
BRT_SST_ITEM, BRT_FONT, BRT_FMT, BRT_FILL, BRT_BORDER, BRT_XF, BRT_STYLE = 0x13, 0x2B, 0x2C, 0x2D, 0x2E, 0x2F, 0x30
BRT_BEGIN_SHEET, BRT_END_SHEET, BRT_BEGIN_BOOK, BRT_END_BOOK = 0x81, 0x82, 0x83, 0x84
BRT_BEGIN_BOOK_VIEWS, BRT_END_BOOK_VIEWS, BRT_BOOK_VIEW = 0x87, 0x88, 0x9E
BRT_BEGIN_BUNDLE_SHS, BRT_END_BUNDLE_SHS, BRT_BUNDLE_SH = 0x8F, 0x90, 0x9C
BRT_BEGIN_SHEET_DATA, BRT_END_SHEET_DATA, BRT_WS_DIM, BRT_WB_PROP = 0x91, 0x92, 0x94, 0x99
BRT_BEGIN_SST, BRT_END_SST = 0x9F, 0xA0
BRT_BEGIN_STYLE_SHEET, BRT_END_STYLE_SHEET = 0x116, 0x117
BRT_BEGIN_FILLS, BRT_END_FILLS, BRT_BEGIN_FONTS, BRT_END_FONTS = 0x25B, 0x25C, 0x263, 0x264
BRT_BEGIN_BORDERS, BRT_END_BORDERS, BRT_BEGIN_FMTS, BRT_END_FMTS = 0x265, 0x266, 0x267, 0x268
BRT_BEGIN_CELL_XFS, BRT_END_CELL_XFS, BRT_BEGIN_STYLES, BRT_END_STYLES = 0x269, 0x26A, 0x26B, 0x26C
BRT_BEGIN_CELL_STYLE_XFS, BRT_END_CELL_STYLE_XFS = 0x272, 0x273
DIV0 = 0x07  # the BErr of #DIV/0!

# Number formats of our own start at 164; cell XF 0 is General, 1 a date, 2 a date and time (as the xlsx has).
XLSB_FORMATS = [(164, "yyyy-mm-dd"), (165, "yyyy-mm-dd hh:mm:ss")]
XF_GENERAL, XF_DATE, XF_DATETIME = 0, 1, 2


def _varint(n, most):
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            break
    assert len(out) <= most, "record type or size too large"
    return bytes(out)


def record(typ, data=b""):
    return _varint(typ, 2) + _varint(len(data), 4) + data


def wide(text):
    """An XLWideString: its length in UTF-16 code units, then the UTF-16LE text."""
    utf16 = text.encode("utf-16-le")
    return struct.pack("<I", len(utf16) // 2) + utf16


def color_auto():
    return bytes(8)  # a BrtColor with xColorType 0: automatic


def color_theme(index):
    return struct.pack("<BBhBBBB", 3 << 1, index, 0, 0, 0, 0, 0)  # xColorType 3: a theme color


def xl_cell(column, style):
    """The Cell that starts every cell record: its column, then a 24-bit iStyleRef (and fPhShow 0)."""
    return struct.pack("<II", column, style & 0xFFFFFF)


def _rk_value(rk):
    if rk & 2:
        n = struct.unpack("<i", struct.pack("<I", rk & 0xFFFFFFFC))[0] >> 2
    else:
        n = struct.unpack("<d", struct.pack("<Q", (rk & 0xFFFFFFFC) << 32))[0]
    return n / 100 if rk & 1 else n


def rk_number(value):
    """The RkNumber Excel would store `value` as (a 30-bit integer or a float's top 30 bits, either of them
    possibly times 100), or None if no RkNumber is exactly `value`."""
    for times100 in (0, 1):
        n = value * 100 if times100 else value
        if n == int(n) and -(2**29) <= n < 2**29:
            rk = ((int(n) << 2) & 0xFFFFFFFF) | 2 | times100
            if _rk_value(rk) == value:
                return rk
        bits = struct.unpack("<Q", struct.pack("<d", float(n)))[0]
        if bits & 0x3FFFFFFFF == 0:
            rk = (bits >> 32) | times100
            if _rk_value(rk) == value:
                return rk
    return None


def excel_serial(value):
    """Days since 1899-12-30, the 1900 date system (as openpyxl computes them for the xlsx)."""
    if not isinstance(value, datetime.datetime):
        value = datetime.datetime.combine(value, datetime.time())
    days = (value - datetime.datetime(1899, 12, 30)).days
    seconds = value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 10**6
    return days + seconds / 86400


def number_cell(column, value, style=XF_GENERAL):
    rk = rk_number(value)
    if rk is not None:
        return record(BRT_CELL_RK, xl_cell(column, style) + struct.pack("<I", rk))
    return record(BRT_CELL_REAL, xl_cell(column, style) + struct.pack("<d", value))


def row_header(row, first_column, last_column):
    """BrtRowHdr: the row, its XF, its height in twips (15 pt), no flags, and the one span of its cells."""
    return record(BRT_ROW_HDR, struct.pack("<IIHBBBIII", row, 0, 300, 0, 0, 0, 1, first_column, last_column))


def xlsb_sheet(rows):
    """A worksheet part: `rows` is a list of (row, first column, [cell records]), in order."""
    if rows:
        last_row = rows[-1][0]
        first_column = min(r[1] for r in rows)
        last_column = max(r[1] + len(r[2]) - 1 for r in rows)
        dimension = struct.pack("<IIII", rows[0][0], last_row, first_column, last_column)
    else:
        dimension = bytes(16)  # an empty sheet's dimension is A1
    parts = [record(BRT_BEGIN_SHEET), record(BRT_WS_DIM, dimension), record(BRT_BEGIN_SHEET_DATA)]
    for row, first, cells in rows:
        parts.append(row_header(row, first, first + len(cells) - 1))
        parts.extend(cells)
    parts += [record(BRT_END_SHEET_DATA), record(BRT_END_SHEET)]
    return b"".join(parts)


def xlsb_styles():
    """styles.bin ([MS-XLSB] 2.1.7.50): the number formats, then one font, the two fills and the border every
    workbook has, the Normal cell style and its XF, and the cell XFs the cells name by index."""
    xf = lambda parent, fmt, changed: struct.pack("<HHHHHBBHBB", parent, fmt, 0, 0, 0, 0, 0, 0x1010, changed, 0)
    fill = lambda pattern: struct.pack("<I", pattern) + color_auto() + color_auto() + bytes(48)
    font = struct.pack("<HHHHBBBB", 220, 0, 400, 0, 0, 2, 0, 0) + color_theme(1) + b"\x02" + wide("Calibri")
    count = lambda n: struct.pack("<I", n)
    cell_xfs = [xf(0, 0, 0), xf(0, XLSB_FORMATS[0][0], 1), xf(0, XLSB_FORMATS[1][0], 1)]  # fAtrNum: its own format
    parts = [record(BRT_BEGIN_STYLE_SHEET), record(BRT_BEGIN_FMTS, count(len(XLSB_FORMATS)))]
    parts += [record(BRT_FMT, struct.pack("<H", code) + wide(text)) for code, text in XLSB_FORMATS]
    parts += [record(BRT_END_FMTS)]
    parts += [record(BRT_BEGIN_FONTS, count(1)), record(BRT_FONT, font), record(BRT_END_FONTS)]
    parts += [record(BRT_BEGIN_FILLS, count(2)), record(BRT_FILL, fill(0)), record(BRT_FILL, fill(17))]
    parts += [record(BRT_END_FILLS)]  # patterns none and gray125
    parts += [record(BRT_BEGIN_BORDERS, count(1)), record(BRT_BORDER, bytes(51)), record(BRT_END_BORDERS)]
    parts += [record(BRT_BEGIN_CELL_STYLE_XFS, count(1)), record(BRT_XF, xf(0xFFFF, 0, 0))]
    parts += [record(BRT_END_CELL_STYLE_XFS)]
    parts += [record(BRT_BEGIN_CELL_XFS, count(len(cell_xfs)))] + [record(BRT_XF, x) for x in cell_xfs]
    parts += [record(BRT_END_CELL_XFS)]
    normal = struct.pack("<IHBB", 0, 1, 0, 0xFF) + wide("Normal")  # built-in style 0, Normal
    parts += [record(BRT_BEGIN_STYLES, count(1)), record(BRT_STYLE, normal), record(BRT_END_STYLES)]
    parts += [record(BRT_END_STYLE_SHEET)]
    return b"".join(parts)


def xlsb_workbook(names):
    """workbook.bin: the workbook's properties, one window, and its sheets, each by relationship id."""
    view = struct.pack("<iiIIIIIB", 0, 0, 28800, 17000, 600, 0, 0, 0x78)  # BrtBookView: shows both scroll bars and the tabs
    parts = [
        record(BRT_BEGIN_BOOK),
        record(BRT_WB_PROP, struct.pack("<II", 0, 0) + wide("")),  # the 1900 date system
        record(BRT_BEGIN_BOOK_VIEWS),
        record(BRT_BOOK_VIEW, view),
        record(BRT_END_BOOK_VIEWS),
        record(BRT_BEGIN_BUNDLE_SHS),
    ]
    for i, name in enumerate(names, start=1):
        parts.append(record(BRT_BUNDLE_SH, struct.pack("<II", 0, i) + wide(f"rId{i}") + wide(name)))
    parts += [record(BRT_END_BUNDLE_SHS), record(BRT_END_BOOK)]
    return b"".join(parts)


def xlsb_shared_strings(strings):
    items = [record(BRT_SST_ITEM, b"\x00" + wide(s)) for s in strings]  # a RichStr with no runs
    begin = record(BRT_BEGIN_SST, struct.pack("<II", len(strings), len(strings)))
    return begin + b"".join(items) + record(BRT_END_SST)


def places_xlsb(out):
    strings = []

    def text_cell(column, value):
        if value not in strings:
            strings.append(value)
        return record(BRT_CELL_ISST, xl_cell(column, XF_GENERAL) + struct.pack("<I", strings.index(value)))

    def cell(column, value):
        if value == "#DIV/0!":
            return record(BRT_CELL_ERROR, xl_cell(column, XF_GENERAL) + bytes([DIV0]))
        if isinstance(value, str):
            return text_cell(column, value)
        if isinstance(value, datetime.datetime):
            return number_cell(column, excel_serial(value), XF_DATETIME)
        if isinstance(value, datetime.date):
            return number_cell(column, excel_serial(value), XF_DATE)
        return number_cell(column, value)

    # row 3 (index 2) holds the header from column B (index 1) on
    rows = [(2, 1, [text_cell(1 + c, name) for c, name in enumerate(HEADER)])]
    rows += [(3 + r, 1, [cell(1 + c, v) for c, v in enumerate(row)]) for r, row in enumerate(ROWS)]
    places = xlsb_sheet(rows)

    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    xml = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    part = lambda name, kind: f'<Override PartName="/xl/{name}" ContentType="application/vnd.ms-excel.{kind}"/>'
    content_types = (
        xml + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="bin" ContentType="application/vnd.ms-excel.sheet.binary.macroEnabled.main"/>'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        + part("worksheets/sheet1.bin", "worksheet") + part("worksheets/sheet2.bin", "worksheet")
        + part("styles.bin", "styles") + part("sharedStrings.bin", "sharedStrings") + "</Types>"
    )
    relationship = lambda i, kind, target: f'<Relationship Id="rId{i}" Type="{rel}/{kind}" Target="{target}"/>'
    relationships = lambda *r: (
        xml + '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        + "".join(r) + "</Relationships>"
    )
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as book:
        book.writestr("[Content_Types].xml", content_types)
        book.writestr("_rels/.rels", relationships(relationship(1, "officeDocument", "xl/workbook.bin")))
        book.writestr("xl/workbook.bin", xlsb_workbook(["Cover", "Places"]))
        book.writestr("xl/_rels/workbook.bin.rels", relationships(
            relationship(1, "worksheet", "worksheets/sheet1.bin"),
            relationship(2, "worksheet", "worksheets/sheet2.bin"),
            relationship(3, "styles", "styles.bin"),
            relationship(4, "sharedStrings", "sharedStrings.bin"),
        ))
        book.writestr("xl/worksheets/sheet1.bin", xlsb_sheet([]))
        book.writestr("xl/worksheets/sheet2.bin", places)
        book.writestr("xl/styles.bin", xlsb_styles())
        book.writestr("xl/sharedStrings.bin", xlsb_shared_strings(strings))


def empty_xlsx(out):
    import openpyxl

    book = openpyxl.Workbook()
    book.create_sheet("Second")
    book.save(out)


def sparse_xlsx(out):
    import openpyxl

    book = openpyxl.Workbook()
    book.active["A1"] = "name"
    book.active["A2"] = "near"
    book.active["XFD1048576"] = "far"
    book.save(out)


if __name__ == "__main__":
    what, fmt, out = sys.argv[1:4]
    {"places": {"xlsx": places_xlsx, "ods": places_ods, "xlsb": places_xlsb}, "empty": {"xlsx": empty_xlsx},
     "sparse": {"xlsx": sparse_xlsx}}[what][fmt](out)
