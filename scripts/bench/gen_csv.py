"""Writes the benchmark's input twice: the CSV a user would upload, and the same rows already typed with
both geometries encoded (hex EWKB), which is what the floor loads with psql's \\copy."""
import math
import random
import struct
import sys

rows = int(sys.argv[1])
upload_path, floor_path = sys.argv[2], sys.argv[3]
rng = random.Random(42)
R = 6378137.0
words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"]

def ewkb(x, y, srid):
    return struct.pack("<BIIdd", 1, 0x20000001, srid, x, y).hex()

with open(upload_path, "w") as up, open(floor_path, "w") as fl:
    up.write("id,name,category,value,count,active,created_at,latitude,longitude\n")
    for i in range(1, rows + 1):
        name = f"{rng.choice(words)} {rng.choice(words)} {i}"
        category = rng.choice(words)
        value = round(rng.uniform(-1000, 1000), 4)
        count = rng.randint(0, 100000)
        active = "true" if rng.random() < 0.5 else "false"
        ts = f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
        lat = round(rng.uniform(-60, 70), 6)
        lon = round(rng.uniform(-180, 180), 6)
        up.write(f"{i},{name},{category},{value},{count},{active},{ts},{lat},{lon}\n")
        mx = math.radians(lon) * R
        my = math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)) * R
        fl.write(f"{i}\t{ewkb(lon, lat, 4326)}\t{ewkb(mx, my, 3857)}\t{i}\t{name}\t{category}\t{value}\t{count}\t{active}\t{ts}\t{lat}\t{lon}\n")
