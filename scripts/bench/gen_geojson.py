"""Writes a GeoJSON FeatureCollection of about the given size in megabytes: points and small polygons with
a few properties."""
import random
import sys

target = int(sys.argv[1]) * 1_000_000
path = sys.argv[2]
rng = random.Random(7)
words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]
written = 0
with open(path, "w") as out:
    out.write('{"type":"FeatureCollection","features":[\n')
    i = 0
    while written < target:
        x, y = round(rng.uniform(-170, 170), 6), round(rng.uniform(-60, 70), 6)
        if i % 4 == 0:
            geom = '{"type":"Polygon","coordinates":[[[%f,%f],[%f,%f],[%f,%f],[%f,%f]]]}' % (x, y, x + 0.01, y, x + 0.01, y + 0.01, x, y)
        else:
            geom = '{"type":"Point","coordinates":[%f,%f]}' % (x, y)
        line = '%s{"type":"Feature","properties":{"id":%d,"name":"%s %d","value":%f,"flag":%s},"geometry":%s}\n' % (
            "," if i else "", i, rng.choice(words), i, rng.uniform(0, 1000), "true" if i % 2 else "false", geom)
        out.write(line)
        written += len(line)
        i += 1
    out.write("]}\n")
print(i)
