"""Writes the workbooks of tests/it/spreadsheets.rs with real writers: openpyxl (xlsx) and odfpy (ods).

    write_book.py places xlsx|ods OUT   an empty first sheet, then a sheet whose header starts at B3
    write_book.py empty xlsx OUT        two sheets, neither with a value
    write_book.py sparse xlsx OUT       two cells, at A1 and at XFD1048576 (the last cell a sheet has)
"""
import datetime
import sys

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
    {"places": {"xlsx": places_xlsx, "ods": places_ods}, "empty": {"xlsx": empty_xlsx},
     "sparse": {"xlsx": sparse_xlsx}}[what][fmt](out)
