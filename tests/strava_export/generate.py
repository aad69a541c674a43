#!/usr/bin/env python3
"""Writes a realistic Strava bulk export ("Download your data") ZIP, deterministic from a seed.

The archive has what Strava's has: profile.csv, activities.csv with Strava's real column
headers (duplicated names included), activities/ with one GPX, TCX or FIT file per activity,
some gzipped, and media, gear, clubs, comments, followers, messages and routes beside them.
FIT files are written with the `fit-tool` package from PyPI (`scripts/install.sh fit` puts it in
~/.cache/kompass/fit-tool-0.9.16).

Every identifying value is a planted sentinel: names, titles, descriptions, notes, e-mail,
cities, gear names, device names and serial numbers, coordinates and activity ids. They go to
`<out>.expected.json` (`sentinels`) with the samples of every activity file and the CSV text of
every metric, so tests can check that none survives an import and that metrics and streams are
kept exactly.

Same seed and arguments, same bytes (fixed ZIP dates, gzip without mtime).

    generate.py OUT.zip [--seed 15] [--activities 6] [--samples 120] [--photos 3]
"""

import argparse
import csv
import gzip
import io
import json
import math
import random
import zipfile

# Strava's activities.csv header, in order; names repeat (the second block is in SI units).
ACTIVITY_HEADERS = [
    "Activity ID", "Activity Date", "Activity Name", "Activity Type", "Activity Description",
    "Elapsed Time", "Distance", "Max Heart Rate", "Relative Effort", "Commute",
    "Activity Private Note", "Activity Gear", "Filename", "Athlete Weight", "Bike Weight",
    "Elapsed Time", "Moving Time", "Distance", "Max Speed", "Average Speed", "Elevation Gain",
    "Elevation Loss", "Elevation Low", "Elevation High", "Max Grade", "Average Grade",
    "Average Positive Grade", "Average Negative Grade", "Max Cadence", "Average Cadence",
    "Max Heart Rate", "Average Heart Rate", "Max Watts", "Average Watts", "Calories",
    "Max Temperature", "Average Temperature", "Relative Effort", "Total Work", "Number of Runs",
    "Uphill Time", "Downhill Time", "Other Time", "Perceived Exertion", "Type", "Start Time",
    "Weighted Average Power", "Power Count", "Prefer Perceived Exertion",
    "Perceived Relative Effort", "Commute", "Total Weight Lifted", "From Upload",
    "Grade Adjusted Distance", "Weather Observation Time", "Weather Condition",
    "Weather Temperature", "Apparent Temperature", "Dewpoint", "Humidity", "Weather Pressure",
    "Wind Speed", "Wind Gust", "Wind Bearing", "Precipitation Intensity", "Sunrise Time",
    "Sunset Time", "Moon Phase", "Bike", "Gear", "Precipitation Probability",
    "Precipitation Type", "Cloud Cover", "Weather Visibility", "UV Index", "Weather Ozone",
    "Jump Count", "Total Grit", "Average Flow", "Flagged", "Average Elapsed Speed",
    "Dirt Distance", "Newly Explored Distance", "Newly Explored Dirt Distance",
    "Activity Count", "Total Steps", "Carbon Saved", "Pool Length", "Training Load",
    "Intensity", "Average Grade Adjusted Pace", "Timer Time", "Total Cycles", "Media",
]

PROFILE_HEADERS = [
    "Athlete ID", "Email Address", "First Name", "Last Name", "Sex", "Description", "Weight",
    "City", "State", "Country", "Health Consent Status", "Date of Health Consent Status",
]

FORMATS = ["fit", "gpx", "tcx", "fit.gz", "gpx.gz", "tcx.gz"]
TYPES = ["Ride", "Ride", "Virtual Ride", "Gravel Ride", "Run", "Ride"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
FIT_EPOCH = 631065600  # 1989-12-31T00:00:00Z in Unix seconds
ZIP_DATE = (2024, 6, 1, 12, 0, 0)


class Planter:
    """Makes unique, recognisable identifying values and remembers them."""

    def __init__(self, rng):
        self.rng = rng
        self.values = []
        # Planted only in binary form (FIT): not findable as text in the archive.
        self.binary = []

    def word(self, label):
        tag = "".join(self.rng.choice("bcdfghjkmnpqrstvwxz") for _ in range(6))
        value = f"{label} Zq{tag}"
        self.values.append(value)
        return value

    def number(self, lo, hi):
        value = self.rng.randint(lo, hi)
        self.values.append(str(value))
        return value


def strava_date(unix):
    """Strava's activities.csv date, in UTC: 'May 1, 2024, 4:30:12 AM'."""
    import datetime as dt
    t = dt.datetime.fromtimestamp(unix, dt.timezone.utc)
    hour = t.hour % 12 or 12
    ampm = "AM" if t.hour < 12 else "PM"
    return f"{MONTHS[t.month - 1]} {t.day}, {t.year}, {hour}:{t.minute:02d}:{t.second:02d} {ampm}"


def iso(unix):
    import datetime as dt
    return dt.datetime.fromtimestamp(unix, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def ride_samples(rng, start, n, home):
    """n one-second samples of a ride leaving `home`: the values each format can hold."""
    lat, lon = home
    heading = rng.uniform(0, 2 * math.pi)
    dist = 0.0
    out = []
    for i in range(n):
        speed = round(max(0.5, 8.0 + 3 * math.sin(i / 40) + rng.uniform(-1, 1)), 3)
        if i:
            dist = round(dist + speed, 2)
            heading += rng.uniform(-0.05, 0.05)
            lat += speed * math.cos(heading) / 111_320
            lon += speed * math.sin(heading) / (111_320 * math.cos(math.radians(lat)))
        out.append({
            "t": start + i,
            "lat": round(lat, 7),
            "lon": round(lon, 7),
            "ele": round(450 + 30 * math.sin(i / 90), 1),
            "hr": 120 + int(30 * (1 + math.sin(i / 60)) / 2) + rng.randint(0, 5),
            "cad": 80 + rng.randint(0, 15),
            "watts": max(0, int(200 + 60 * math.sin(i / 25) + rng.randint(-20, 20))),
            "speed": speed,
            "dist": dist,
            "temp": 18 + (i // 300) % 3,
        })
    return out


def gpx_file(p, title, desc, samples):
    pts = []
    for s in samples:
        pts.append(
            f'   <trkpt lat="{s["lat"]:.7f}" lon="{s["lon"]:.7f}">\n'
            f'    <ele>{s["ele"]}</ele>\n    <time>{iso(s["t"])}</time>\n'
            f'    <extensions>\n     <power>{s["watts"]}</power>\n'
            f'     <gpxtpx:TrackPointExtension>\n      <gpxtpx:atemp>{s["temp"]}</gpxtpx:atemp>\n'
            f'      <gpxtpx:hr>{s["hr"]}</gpxtpx:hr>\n      <gpxtpx:cad>{s["cad"]}</gpxtpx:cad>\n'
            f'     </gpxtpx:TrackPointExtension>\n    </extensions>\n   </trkpt>\n'
        )
    device = p.word("Edge")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<gpx creator="{device}" version="1.1" xmlns="http://www.topografix.com/GPX/1/1" '
        'xmlns:gpxtpx="http://www.garmin.com/xmlschemas/TrackPointExtension/v1">\n'
        f' <metadata>\n  <name>{title}</name>\n  <time>{iso(samples[0]["t"])}</time>\n </metadata>\n'
        f' <trk>\n  <name>{title}</name>\n  <desc>{desc}</desc>\n  <type>cycling</type>\n  <trkseg>\n'
        + "".join(pts)
        + "  </trkseg>\n </trk>\n</gpx>\n"
    ).encode()


def tcx_file(p, title, samples):
    pts = []
    for s in samples:
        pts.append(
            f'       <Trackpoint>\n        <Time>{iso(s["t"])}</Time>\n'
            f'        <Position><LatitudeDegrees>{s["lat"]:.7f}</LatitudeDegrees>'
            f'<LongitudeDegrees>{s["lon"]:.7f}</LongitudeDegrees></Position>\n'
            f'        <AltitudeMeters>{s["ele"]}</AltitudeMeters>\n'
            f'        <DistanceMeters>{s["dist"]}</DistanceMeters>\n'
            f'        <HeartRateBpm><Value>{s["hr"]}</Value></HeartRateBpm>\n'
            f'        <Cadence>{s["cad"]}</Cadence>\n'
            f'        <Extensions><ns3:TPX><ns3:Speed>{s["speed"]}</ns3:Speed>'
            f'<ns3:Watts>{s["watts"]}</ns3:Watts></ns3:TPX></Extensions>\n'
            '       </Trackpoint>\n'
        )
    device = p.word("Edge")
    serial = p.number(3_900_000_000, 3_999_999_999)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<TrainingCenterDatabase xmlns="http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2" '
        'xmlns:ns3="http://www.garmin.com/xmlschemas/ActivityExtension/v2">\n'
        ' <Activities>\n  <Activity Sport="Biking">\n'
        f'   <Id>{iso(samples[0]["t"])}</Id>\n'
        f'   <Lap StartTime="{iso(samples[0]["t"])}">\n'
        f'    <TotalTimeSeconds>{len(samples) - 1}</TotalTimeSeconds>\n'
        f'    <DistanceMeters>{samples[-1]["dist"]}</DistanceMeters>\n'
        '    <Track>\n' + "".join(pts) + '    </Track>\n'
        f'    <Notes>{title}</Notes>\n   </Lap>\n'
        f'   <Creator xsi:type="Device_t" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f'<Name>{device}</Name><UnitId>{serial}</UnitId><ProductID>3121</ProductID></Creator>\n'
        '  </Activity>\n </Activities>\n</TrainingCenterDatabase>\n'
    ).encode()


def fit_file(p, samples):
    from fit_tool.fit_file_builder import FitFileBuilder
    from fit_tool.profile.messages.device_info_message import DeviceInfoMessage
    from fit_tool.profile.messages.file_id_message import FileIdMessage
    from fit_tool.profile.messages.record_message import RecordMessage
    from fit_tool.profile.profile_type import FileType, Manufacturer

    builder = FitFileBuilder(auto_define=True, min_string_size=50)
    start_ms = samples[0]["t"] * 1000
    file_id = FileIdMessage()
    file_id.type = FileType.ACTIVITY
    file_id.manufacturer = Manufacturer.GARMIN.value
    file_id.product = 3121
    file_id.time_created = start_ms
    file_id.serial_number = p.number(3_900_000_000, 3_999_999_999)
    p.binary.append(str(file_id.serial_number))
    builder.add(file_id)
    device = DeviceInfoMessage()
    device.timestamp = start_ms
    device.serial_number = p.number(3_900_000_000, 3_999_999_999)
    p.binary.append(str(device.serial_number))
    device.product_name = p.word("Edge")
    builder.add(device)
    records = []
    for s in samples:
        r = RecordMessage()
        r.timestamp = s["t"] * 1000
        r.position_lat = s["lat"]
        r.position_long = s["lon"]
        r.altitude = s["ele"]
        r.heart_rate = s["hr"]
        r.cadence = s["cad"]
        r.power = s["watts"]
        r.speed = s["speed"]
        r.distance = s["dist"]
        r.temperature = s["temp"]
        records.append(r)
    builder.add_all(records)
    return builder.build().to_bytes()


def csv_text(rows):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    for row in rows:
        w.writerow(row)
    return buf.getvalue().encode()


def generate(seed, n_activities, n_samples, n_photos):
    rng = random.Random(seed)
    p = Planter(rng)
    files = []  # (name, bytes), in archive order
    home = (round(45.89 + rng.uniform(0, 0.01), 7), round(6.12 + rng.uniform(0, 0.01), 7))
    p.values += [f"{home[0]:.7f}", f"{home[1]:.7f}"]

    athlete_id = p.number(10_000_000, 99_999_999)
    first, last = p.word("Amelie"), p.word("Rousseau")
    email = f"rider.{rng.randint(1000, 9999)}@example.org"
    p.values.append(email)
    profile = [PROFILE_HEADERS, [athlete_id, email, first, last, "F", p.word("Bio"), "58.4",
                                 p.word("Annecy"), p.word("Savoie"), p.word("France"),
                                 "Consented", "Mar 14, 2016, 9:21:07 AM"]]
    files.append(("profile.csv", csv_text(profile)))

    bike, shoe = p.word("Canyon"), p.word("Pegasus")
    files.append(("bikes.csv", csv_text([["Bike Name", "Bike Brand", "Bike Model", "Bike Default Sport Types"],
                                         [bike, "Canyon", "Ultimate", "Ride"]])))
    files.append(("shoes.csv", csv_text([["Shoe Name", "Shoe Brand", "Shoe Model", "Shoe Default Sport Types"],
                                         [shoe, "Nike", "Pegasus", "Run"]])))
    files.append(("clubs.csv", csv_text([["Club Name", "Club Description", "Club Type", "Sport", "Website", "City", "State", "Country"],
                                         [p.word("Club"), p.word("ClubDesc"), "club", "cycling", "", p.word("Talloires"), "", ""]])))
    files.append(("followers.csv", csv_text([["Follower", "Status"], [p.word("Julien"), "Accepted"]])))
    files.append(("messaging/conversations.csv", csv_text([["Conversation ID", "Message"], [p.number(100_000_000, 999_999_999), p.word("Hello")]])))
    files.append(("routes/1.gpx", gpx_file(p, p.word("Route"), p.word("RouteDesc"), ride_samples(rng, 1_700_000_000, 5, home))))

    expected_activities = []
    rows = [ACTIVITY_HEADERS]
    comments = [["Activity ID", "Comment", "Commenter"]]
    t = 1_714_537_812  # 2024-05-01T04:30:12Z
    photo_left = n_photos
    for i in range(n_activities):
        fmt = FORMATS[i % len(FORMATS)]
        act_id = p.number(10_000_000_000, 12_999_999_999)
        title, desc, note = p.word("Col de la Forclaz"), p.word("Coffee with Julien"), p.word("Knee")
        samples = ride_samples(rng, t, n_samples, home)
        base = fmt.split(".")[0]
        for s in samples:
            p.values += [f'{s["lat"]:.7f}', f'{s["lon"]:.7f}']
            if base == "fit":
                p.binary += [f'{s["lat"]:.7f}', f'{s["lon"]:.7f}']
        if base == "fit":
            body = fit_file(p, samples)
        elif base == "gpx":
            body = gpx_file(p, title, desc, samples)
        else:
            body = tcx_file(p, title, samples)
        if fmt.endswith(".gz"):
            body = gzip.compress(body, mtime=0)
        path = f"activities/{act_id}.{fmt}"
        files.append((path, body))
        media = []
        if photo_left:
            photo_left -= 1
            media = [f"media/{p.number(100000, 999999)}.jpg"]
            files.append((media[0], bytes(rng.randrange(256) for _ in range(64))))
        comments.append([act_id, p.word("Comment"), p.word("Commenter")])

        moving = n_samples - 1
        elapsed = moving + rng.randint(0, 60)
        dist_m = samples[-1]["dist"]
        metrics = {
            "elapsed_time": str(elapsed),
            "moving_time": f"{moving}.0",
            "distance": f"{dist_m}",
            "max_speed": f"{max(s['speed'] for s in samples)}",
            "average_speed": f"{round(dist_m / max(moving, 1), 6)}",
            "total_elevation_gain": f"{round(rng.uniform(50, 900), 1)}",
            "elev_low": "420.0",
            "elev_high": "480.0",
            "average_cadence": f"{round(sum(s['cad'] for s in samples) / n_samples, 4)}",
            "max_heartrate": f"{max(s['hr'] for s in samples)}.0",
            "average_heartrate": f"{round(sum(s['hr'] for s in samples) / n_samples, 4)}",
            "max_watts": f"{max(s['watts'] for s in samples)}.0",
            "average_watts": f"{round(sum(s['watts'] for s in samples) / n_samples, 4)}",
            "calories": f"{rng.randint(200, 2000)}.0",
            "suffer_score": f"{rng.randint(10, 200)}.0",
            "perceived_exertion": "" if i % 2 else f"{rng.randint(1, 10)}.0",
            "weighted_average_watts": f"{rng.randint(150, 300)}.0",
        }
        row = {h: "" for h in ACTIVITY_HEADERS}
        vals = [""] * len(ACTIVITY_HEADERS)

        def put(name, value, nth=0):
            idx = [k for k, h in enumerate(ACTIVITY_HEADERS) if h == name][nth]
            vals[idx] = value

        put("Activity ID", act_id)
        put("Activity Date", strava_date(t))
        put("Activity Name", title)
        put("Activity Type", TYPES[i % len(TYPES)])
        put("Activity Description", desc)
        put("Elapsed Time", str(elapsed))
        put("Distance", f"{dist_m / 1000:.2f}")
        put("Max Heart Rate", metrics["max_heartrate"][:-2])
        put("Relative Effort", metrics["suffer_score"][:-2])
        put("Commute", "true" if i % 3 == 0 else "false")
        put("Activity Private Note", note)
        put("Activity Gear", bike)
        put("Filename", path)
        put("Athlete Weight", "58.4")
        put("Bike Weight", "7.2")
        put("Elapsed Time", f"{elapsed}.0", 1)
        put("Moving Time", metrics["moving_time"])
        put("Distance", metrics["distance"], 1)
        put("Max Speed", metrics["max_speed"])
        put("Average Speed", metrics["average_speed"])
        put("Elevation Gain", metrics["total_elevation_gain"])
        put("Elevation Low", metrics["elev_low"])
        put("Elevation High", metrics["elev_high"])
        put("Average Cadence", metrics["average_cadence"])
        put("Max Heart Rate", metrics["max_heartrate"], 1)
        put("Average Heart Rate", metrics["average_heartrate"])
        put("Max Watts", metrics["max_watts"])
        put("Average Watts", metrics["average_watts"])
        put("Calories", metrics["calories"])
        put("Relative Effort", metrics["suffer_score"], 1)
        put("Perceived Exertion", metrics["perceived_exertion"])
        put("Weighted Average Power", metrics["weighted_average_watts"])
        put("Commute", "1" if i % 3 == 0 else "0", 1)
        put("Weather Condition", p.word("Weather"))
        put("Bike", bike)
        put("Media", "|".join(media))
        rows.append(vals)
        expected_activities.append({
            "format": fmt,
            "start_date": iso(t),
            "type": TYPES[i % len(TYPES)].replace(" ", ""),
            "commute": i % 3 == 0,
            "metrics": {k: v for k, v in metrics.items() if v != ""},
            "samples": {
                "time": [s["t"] - t for s in samples],
                "heartrate": [s["hr"] for s in samples],
                "cadence": [s["cad"] for s in samples],
                "watts": [s["watts"] for s in samples],
                "distance": None if base == "gpx" else [s["dist"] for s in samples],
                "velocity_smooth": None if base == "gpx" else [s["speed"] for s in samples],
            },
        })
        t += 86_400 + rng.randint(0, 3600)

    # An activity row without a file (manual entry) and a file no row names.
    manual_id = p.number(10_000_000_000, 12_999_999_999)
    manual = [""] * len(ACTIVITY_HEADERS)
    for k, h in enumerate(ACTIVITY_HEADERS):
        if h == "Activity ID":
            manual[k] = manual_id
        elif h == "Activity Date":
            manual[k] = strava_date(t)
        elif h == "Activity Name":
            manual[k] = p.word("Manual")
        elif h == "Activity Type":
            manual[k] = "Walk"
        elif h == "Elapsed Time":
            manual[k] = "1800"
    rows.append(manual)
    expected_activities.append({"format": None, "start_date": iso(t), "type": "Walk",
                                "commute": None, "metrics": {"elapsed_time": "1800"},
                                "samples": None})

    files.insert(1, ("activities.csv", csv_text(rows)))
    files.append(("comments.csv", csv_text(comments)))
    files.append(("activities/orphan.gpx", gpx_file(p, p.word("Orphan"), p.word("OrphanDesc"), ride_samples(rng, t, 4, home))))

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, body in files:
            info = zipfile.ZipInfo(name, ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, body)
    expected = {
        "seed": seed,
        "athlete": {"sex": "F", "weight": "58.4"},
        "activities": expected_activities,
        "gps_points": n_activities * n_samples,
        "photos": min(n_photos, n_activities),
        "sentinels": sorted(set(p.values)),
        "binary_sentinels": sorted(set(p.binary)),
    }
    return buf.getvalue(), expected


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--activities", type=int, default=6)
    ap.add_argument("--samples", type=int, default=120)
    ap.add_argument("--photos", type=int, default=3)
    ap.add_argument("--no-expected", action="store_true", help="skip OUT.expected.json")
    a = ap.parse_args()
    data, expected = generate(a.seed, a.activities, a.samples, a.photos)
    with open(a.out, "wb") as f:
        f.write(data)
    if not a.no_expected:
        with open(a.out.removesuffix(".zip") + ".expected.json", "w") as f:
            json.dump(expected, f, indent=1, sort_keys=True)
            f.write("\n")


if __name__ == "__main__":
    main()
