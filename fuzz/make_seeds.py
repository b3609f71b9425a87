#!/usr/bin/env python3
"""Writes fuzz/seeds/<target>/*: small inputs in the shapes the tests use (tests/it/csv.rs, tests/it/formats.rs,
tests/it/archives.rs, tests/it/hostile_*.rs and the unit tests), from which the fuzzers start. Run again after
changing it; the seeds are committed."""
import bz2, gzip, io, os, struct, tarfile, zipfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds")

def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))

# CSV: the dialects, encodings and value kinds the loader guesses
csv = {
    "sample": "name,lat,lon\nOne,40.1,-3.1\nTwo,40.2,-3.2\nThree,40.3,-3.3\n",
    "semicolon": "id;nombre;fecha;importe\n1;Año;2024-01-05;1.234,50\n2;\"quoted; value\";05/02/2024;-3\n",
    "tabs": "a\tb\tc\n1\ttrue\t2020-01-01T10:00:00Z\n2\tfalse\t\n",
    "wkt": 'name,the_geom\npoly,"POLYGON((0 0,1 0,1 1,0 0))"\nline,LINESTRING(0 0,1 1)\n',
    "hexwkb": "name,geom\np,0101000020E6100000000000000000F03F0000000000000040\n",
    "geojson_cell": 'id,geometry\n1,"{""type"":""Point"",""coordinates"":[1,2]}"\n',
    "kml_cell": 'id,geometry\n1,"<Point><coordinates>1,2</coordinates></Point>"\n',
    "short_rows": "a,b,c\n1\n1,2,3,4,5\n,,\n",
    "ids": "cartodb_id,the_geom,name,NAME,select\n1,,x,y,z\n2,,x,y,z\n",
    "latin1": "nombre,ciudad\nJos\xe9,M\xe1laga\n".encode("latin-1"),
    "bom_utf16": "\ufeffa,b\n1,2\n".encode("utf-16"),
    "numbers": "big,small,mixed\n123456789012345678901234,0.5,1\n-9223372036854775808,1e308,x\n",
    "quoted_newline": 'a,b\n"line\nbreak",2\n"x""y",3\n',
}
for k, v in csv.items():
    write("csv", k, v)

# JSON and GeoJSON: the layouts the streaming reader knows
json = {
    "collection": '{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"a":1,"s":"x"},'
                  '"geometry":{"type":"Point","coordinates":[1,2]}}]}',
    "members_first": '{"features":[{"geometry":{"coordinates":[[0,0],[1,1]],"type":"LineString"},"type":"Feature",'
                     '"properties":null}],"crs":{"type":"name"},"type":"FeatureCollection"}',
    "array_rows": '[{"name":"Sol","lat":40.4,"lon":-3.7},{"name":"Luna","latitude":"41","longitude":"2"}]',
    "ndjson": '{"type":"Feature","properties":{"n":1},"geometry":null}\n'
              '{"type":"Feature","properties":{"n":2},"geometry":{"type":"Point","coordinates":[0,0]}}\n',
    "geometry": '{"type":"GeometryCollection","geometries":[{"type":"Point","coordinates":[1,2]},'
                '{"type":"MultiPolygon","coordinates":[[[[0,0,9],[1,0,9],[1,1,9],[0,0,9]]]]}]}',
    "nested": '[{"a":{"k":[1,"two words"]},"b":null,"c":true,"d":1.50e3}]',
    "polygon": '{"type":"Feature","properties":{},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],'
               '[1,1],[0,0]],[]]}}',
}
for k, v in json.items():
    write("json", k, v)

# archives: the first byte picks the kind (fuzzing::unpack): 0 zip, 1 tar, 2 tgz, 3 gz, 4 bz2
def tar_bytes(members, compress=None):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w" + (":" + compress if compress else ""), format=tarfile.GNU_FORMAT) as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("link.csv")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        t.addfile(link)
    return buf.getvalue()

members = [("data/points.csv", csv["sample"].encode()), ("data/" + "n" * 120 + ".csv", b"a\n1\n"),
           ("__MACOSX/._points.csv", b"junk")]
zbuf = io.BytesIO()
with zipfile.ZipFile(zbuf, "w", zipfile.ZIP_DEFLATED) as z:
    for name, data in members:
        z.writestr(name, data)
    z.writestr("../escape.csv", b"a\n1\n")
    z.writestr("inner.zip", b"PK\x05\x06" + b"\0" * 18)
write("unpack", "zip", b"\x00" + zbuf.getvalue())
write("unpack", "tar", b"\x01" + tar_bytes(members))
write("unpack", "tgz", b"\x02" + tar_bytes(members, "gz"))
write("unpack", "gz", b"\x03" + gzip.compress(csv["sample"].encode()))
write("unpack", "bz2", b"\x04" + bz2.compress(csv["sample"].encode()))

# names: headers and file names as users send them
names = ["2abc", "Abc", "CONVERT(BlueNumber USING utf8)", "is growing site fenced?", "Año & niño &amp; más",
         "select", "pg_class.csv", "cartodb_id\nthe_geom\nthe_geom_webmercator", "a,a,A,a_1", "日本語の名前",
         "___", "<b>bold</b> name", "x" * 80 + ".csv", "table (1).geojson.gz"]
for i, v in enumerate(names):
    write("names", f"n{i}", v)

# (E)WKB and geometry text; the first byte also picks the SRID assumed (fuzzing::wkb)
def wkb_point(x, y, srid=None, little=True):
    e = "<" if little else ">"
    kind = 1 | (0x20000000 if srid else 0)
    head = struct.pack(e + "BI", 1 if little else 0, kind) + (struct.pack(e + "I", srid) if srid else b"")
    return head + struct.pack(e + "dd", x, y)

def wkb_line(points):
    return struct.pack("<BII", 1, 2, len(points)) + b"".join(struct.pack("<dd", *p) for p in points)

write("wkb", "point", wkb_point(1, 2))
write("wkb", "ewkb_3857", wkb_point(100000, 200000, 3857, little=False))
write("wkb", "line", wkb_line([(0, 0), (1, 1), (2, 0)]))
write("wkb", "collection", struct.pack("<BII", 1, 7, 2) + wkb_point(1, 2) + wkb_line([(0, 0), (1, 1)]))
write("wkb", "polygon_z", struct.pack("<BIII", 1, 1003, 1, 4) + b"".join(struct.pack("<ddd", *p)
      for p in [(0, 0, 1), (1, 0, 1), (1, 1, 1), (0, 0, 1)]))
write("wkb", "wkt", "MULTIPOLYGON(((0 0,1 0,1 1,0 0)),((5 5,6 5,6 6,5 5)))")
write("wkb", "geojson", '{"type":"LineString","coordinates":[[0,0],[1,1]]}')
write("wkb", "hex", "0101000020E6100000000000000000F03F0000000000000040")

# PostgreSQL binary COPY: the first byte picks the frame, the second how the stream is cut (fuzzing::copy)
def copy_stream(rows):
    s = b"PGCOPY\n\xff\r\n\0" + struct.pack(">ii", 0, 0)
    for row in rows:
        s += struct.pack(">h", len(row))
        for f in row:
            s += struct.pack(">i", -1) if f is None else struct.pack(">i", len(f)) + f
    return s + struct.pack(">h", -1)

text_rows = [[b"name %d" % i, b"x"] for i in range(3)] + [[None, b""]]
write("copy", "text", bytes([0, 7]) + copy_stream(text_rows))
write("copy", "geometry", bytes([1, 64]) + copy_stream([[wkb_point(1, 2, 4326), b"a", b"b"], [None, b"c", None]]))
write("copy", "latlon", bytes([3 | 2 << 4, 13]) + copy_stream(
    [[struct.pack(">d", 40.5), struct.pack(">d", -3.5)], [struct.pack(">d", 91.0), None]]))
write("copy", "keyed", bytes([4, 5]) + copy_stream([[struct.pack(">q", 7), b"v", b"w"]]))
