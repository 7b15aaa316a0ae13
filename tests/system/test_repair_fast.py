"""Repair by the hour rollups: the hours every database has rolled up are compared by their
rollups, then by (name, source, hour) group, and only the groups that differ have their ids
read; the rest (the open hour after the watermark, dirty hours, the edges) by windows.

Rows are written and deleted with psql through the metrics table (its triggers mark the hours
a later gc rolls up again).  Each test gets fresh servers."""

import calendar
import re
import time
import uuid

from m2pg_sys import run_cli, sql_literal

HOUR = 3600
STEP = 600  # a row every 10 minutes per series
DAYS = 3
# (name, source) of each series: one name under two sources, and unassigned ones.
SERIES = [("fast.a", None), ("fast.b", "web.1"), ("fast.b", "web.2"), ("fast.c", None)] + \
    [("fast.s%02d" % k, None) for k in range(36)]

LOGFMT_PAIR = re.compile(r'([^\s=]+)=("(?:[^"\\]|\\.)*"|\S*)')


def logfmt(line):
    return {k: v[1:-1] if v.startswith('"') else v for k, v in LOGFMT_PAIR.findall(line)}


def log_events(text, at):
    return [r for r in map(logfmt, text.splitlines()) if r.get("at") == at]


def maint(dbs, args, env=None):
    overrides = {"DATABASE_URLS": "|".join(db.url() for db in dbs), "REPAIR_LOOKBACK": "0s"}
    overrides.update(env or {})
    rc, out, err = run_cli(args, overrides, timeout=120)
    assert rc == 0, "m2pg %s exited %d\n%s\n%s" % (" ".join(args), rc, out, err)
    return out


def repair(dbs, args=()):
    """`m2pg repair`: its summary (the last line), with the whole log under "stdout"."""
    out = maint(dbs, ["repair"] + list(args))
    done = log_events(out, "repair-done")
    assert len(done) == 1 and out.strip().splitlines()[-1].find("at=repair-done") >= 0, out
    summary = done[0]
    for key in ("windows", "hours", "days", "series_days", "differing", "groups", "copied_db1", "copied_db2",
                "measure#m2pg.repair.ms"):
        assert re.fullmatch(r"\d+", summary.get(key, "")), (key, out)
    summary["stdout"] = out
    return summary


def gc_once(dbs):
    return maint(dbs, ["gc", "--once"])


def make_rows(now):
    """A row every STEP seconds per series over the last DAYS days, newest a minute ago."""
    last = (now // 60) * 60 - 60
    rows = []
    for name, source in SERIES:
        for k in range(DAYS * 86400 // STEP):
            rows.append({"id": str(uuid.uuid4()), "bucket": last - k * STEP, "name": name,
                         "source": source, "count": k % 7 + 1, "mean": k % 11})
    return rows


def insert(db, rows):
    for k in range(0, len(rows), 500):
        values = ", ".join(
            "(%s, to_timestamp(%d), %s, %s, %s, %s)" % (
                sql_literal(r["id"]), r["bucket"], sql_literal(r["name"]),
                "NULL" if r["source"] is None else sql_literal(r["source"]),
                repr(float(r["count"])), repr(float(r["mean"])))
            for r in rows[k:k + 500])
        db.psql("insert into metrics (id, bucket, name, source, count, mean) values " + values)


def delete(db, rows):
    for k in range(0, len(rows), 500):
        db.psql("delete from metrics where id in (%s)"
                % ", ".join(sql_literal(r["id"]) for r in rows[k:k + 500]))


def ids(db):
    return {r[0] for r in db.psql("select id::text from metrics")}


def hour_rollups(db):
    return db.psql("select name, source, bucket, n, h1, h2, count_n, count_sum, mean_n, mean_sum "
                   "from metrics_hour order by bucket, name, source nulls first")


def unique(rows):
    return list({r["id"]: r for r in rows}.values())


def log_time(text):
    """Unix seconds of a log's RFC 3339 time (UTC)."""
    return calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S"))


def group(row):
    return (row["name"], row["source"], row["bucket"] // HOUR * HOUR)


def fill_and_roll_up(pair, now):
    """Both databases with the same rows, rolled up by a gc."""
    maint(pair, ["migrate"])
    rows = make_rows(now)
    for db in pair:
        insert(db, rows)
    gc_once(pair)
    for db in pair:
        assert db.scalar("select watermark > now() - interval '2 hours' from rollup_state") == "t"
    return rows


def pick(rows, now, lo_age, hi_age, every):
    """Every `every`-th row aged [lo_age, hi_age) seconds."""
    chosen = [r for r in rows if lo_age <= now - r["bucket"] < hi_age]
    return chosen[::every]


def assert_repaired(pair, rows, missing_1, missing_2, summary):
    a, b = pair
    assert int(summary["copied_db1"]) == len(missing_1), summary["stdout"]
    assert int(summary["copied_db2"]) == len(missing_2), summary["stdout"]
    copies = log_events(summary["stdout"], "repair-copy")
    assert sum(int(c["rows"]) for c in copies if c["db"] == "2") == len(missing_2)
    assert sum(int(c["rows"]) for c in copies if c["db"] == "1") == len(missing_1)
    everything = {r["id"] for r in rows}
    assert ids(a) == everything
    assert ids(b) == everything


def test_repair_copies_rows_missing_in_rolled_up_hours_and_the_open_hour(fresh_pair):
    a, b = fresh_pair
    now = int(time.time())
    rows = fill_and_roll_up(fresh_pair, now)

    # Missing from B: a row of two series in an old hour of each day, a whole group of one
    # hour (B then has no rollup row for it), and rows of the open hour (after the watermark).
    # Missing from A: a row of a third series in the same hours. A few groups of a day: their
    # ids are read by group.
    def one(name, hour):
        return [r for r in rows if r["name"] == name and hour <= r["bucket"] < hour + HOUR][:1]

    hours = [(now - (4 + 24 * d) * HOUR) // HOUR * HOUR for d in range(DAYS)]
    scattered = [r for h in hours for r in one("fast.s00", h) + one("fast.s01", h)]
    whole_hour = (now - 5 * HOUR) // HOUR * HOUR
    whole = [r for r in rows if r["name"] == "fast.b" and r["source"] == "web.2"
             and whole_hour <= r["bucket"] < whole_hour + HOUR]
    open_hour = pick(rows, now, 0, 10 * 60, 3)
    missing_2 = scattered + whole + open_hour
    missing_1 = [r for h in hours for r in one("fast.s02", h)]
    assert len(whole) == HOUR // STEP and open_hour and len(scattered) == 2 * DAYS
    delete(b, missing_2)
    delete(a, missing_1)
    gc_once(fresh_pair)  # B's and A's rollups now show what they lack

    first = repair(fresh_pair)
    assert_repaired(fresh_pair, rows, missing_1, missing_2, first)
    old = missing_1 + scattered + whole
    groups = {group(r) for r in old}
    # Only the groups that differ were read, by the rollups (a few groups of a day: by group);
    # the open hour by windows.
    assert int(first["groups"]) == len(groups), first["stdout"]
    differ = log_events(first["stdout"], "repair-groups-differ")
    assert sum(int(e["groups"]) for e in differ) == len(groups), first["stdout"]
    assert "group" in {e["by"] for e in differ}, first["stdout"]
    assert int(first["hours"]) >= DAYS * 24 - 2, first["stdout"]
    # Whole UTC days were compared by their day rollups first; those that differ, by series
    # (three names of 39 differ), and then only those names' hours.
    assert int(first["days"]) >= 1, first["stdout"]
    assert int(first["series_days"]) >= 1, first["stdout"]
    windows = log_events(first["stdout"], "repair-window-differs")
    assert windows and all(log_time(w["from"]) > now - 2 * HOUR for w in windows), first["stdout"]

    second = repair(fresh_pair)
    assert (second["copied_db1"], second["copied_db2"], second["groups"]) == ("0", "0", "0"), \
        second["stdout"]
    assert (second["differing"], second["series_days"]) == ("0", "0"), second["stdout"]
    assert int(second["days"]) >= 1, second["stdout"]

    gc_once(fresh_pair)
    assert hour_rollups(a) == hour_rollups(b)
    assert len(hour_rollups(a)) >= (DAYS * 24 - 2) * len(SERIES)


def test_repair_right_after_deletes_rolls_the_dirty_hours_up_first(fresh_pair):
    a, b = fresh_pair
    now = int(time.time())
    rows = fill_and_roll_up(fresh_pair, now)
    # Most groups of each day: their ids are read by a scan of the day's hours.
    missing_2 = unique(pick(rows, now, 3 * HOUR, 3 * 86400, 5) + pick(rows, now, 0, 10 * 60, 2))
    delete(b, missing_2)
    # No gc: B's hours holding the deleted rows are dirty, and its rollups still count them.
    dirty = int(b.scalar("select count(*) from rollup_dirty"))
    assert dirty > 10

    first = repair(fresh_pair)
    assert_repaired(fresh_pair, rows, [], missing_2, first)
    claimed = {e["db"]: int(e["claimed"]) for e in log_events(first["stdout"], "rollup")}
    assert claimed.get("2", 0) >= dirty, first["stdout"]
    differ = log_events(first["stdout"], "repair-groups-differ")
    assert "range" in {e["by"] for e in differ}, first["stdout"]
    assert int(first["groups"]) == len({group(r) for r in missing_2 if r["bucket"] < now - 2 * HOUR})
    # Every series of the days differs: the days are compared hour by hour, not by series.
    assert first["series_days"] == "0", first["stdout"]

    second = repair(fresh_pair)
    assert (second["copied_db1"], second["copied_db2"]) == ("0", "0"), second["stdout"]
    gc_once(fresh_pair)
    assert hour_rollups(a) == hour_rollups(b)


def test_an_hour_that_stays_dirty_is_compared_by_its_rows(fresh_pair):
    a, b = fresh_pair
    now = int(time.time())
    rows = fill_and_roll_up(fresh_pair, now)
    # Statistics whose sums overflow: the hour cannot be rolled up and stays dirty in both.
    stuck = (now - 10 * HOUR) // HOUR * HOUR
    poison = {"id": str(uuid.uuid4()), "bucket": stuck + 7, "name": "fast.a", "source": None,
              "count": 1e308, "mean": 1e308}
    for db in fresh_pair:
        insert(db, [poison])
    rows.append(poison)
    in_stuck = [r for r in rows if stuck <= r["bucket"] < stuck + HOUR and r is not poison]
    elsewhere = pick(rows, now, 3 * HOUR, 3 * 86400, 131)
    missing_2 = unique(in_stuck[::5] + [r for r in elsewhere if r not in in_stuck])
    delete(b, missing_2)
    gc_once(fresh_pair)
    # A run of consecutive hours rolled up in one statement fails whole: hours next to the
    # stuck one that had rows deleted may stay dirty with it.
    dirty = set()
    for db in fresh_pair:
        hours = {int(float(h[0])) for h in db.psql(
            "select extract(epoch from bucket) from rollup_dirty")}
        assert stuck in hours, db.name
        dirty |= hours

    first = repair(fresh_pair)
    assert_repaired(fresh_pair, rows, [], missing_2, first)
    windows = log_events(first["stdout"], "repair-window-differs")
    assert any(log_time(w["from"]) < stuck + HOUR and log_time(w["to"]) > stuck
               for w in windows), first["stdout"]
    groups = {group(r) for r in missing_2 if group(r)[2] not in dirty}
    assert int(first["groups"]) == len(groups), first["stdout"]

    second = repair(fresh_pair)
    assert (second["copied_db1"], second["copied_db2"]) == ("0", "0"), second["stdout"]


def test_repair_of_a_range_where_nothing_differs_copies_nothing(fresh_pair):
    a, b = fresh_pair
    now = int(time.time())
    rows = fill_and_roll_up(fresh_pair, now)
    missing_2 = pick(rows, now, 2 * 86400, 3 * 86400, 41)
    delete(b, missing_2)
    gc_once(fresh_pair)

    lo = (now - 30 * HOUR) // HOUR * HOUR
    summary = repair(fresh_pair, ["--from", str(lo), "--to", str(now)])
    assert (summary["copied_db1"], summary["copied_db2"]) == ("0", "0"), summary["stdout"]
    assert (summary["differing"], summary["groups"]) == ("0", "0"), summary["stdout"]
    assert int(summary["hours"]) >= 28, summary["stdout"]
    assert ids(a) - ids(b) == {r["id"] for r in missing_2}

    summary = repair(fresh_pair)
    assert_repaired(fresh_pair, rows, [], missing_2, summary)


def test_a_database_that_refuses_the_copies_fails_the_repair_and_not_the_other(fresh_pair):
    """The inserts go on a connection of their own and are waited for later: one that fails
    (here a trigger, as a full disk or a read-only database would) still fails its database,
    and repair exits 1; the other database gets its copies. Once it accepts, a repair fixes it."""
    a, b = fresh_pair
    now = int(time.time())
    rows = fill_and_roll_up(fresh_pair, now)
    hour = (now - 20 * HOUR) // HOUR * HOUR
    in_hour = [r for r in rows if hour <= r["bucket"] < hour + HOUR]
    missing_2 = [r for r in in_hour if r["name"] == "fast.s00"]
    missing_1 = [r for r in in_hour if r["name"] == "fast.s02"]
    assert missing_1 and missing_2
    delete(b, missing_2)
    delete(a, missing_1)
    gc_once(fresh_pair)
    b.psql("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
           "$$ BEGIN RAISE EXCEPTION 'no space left (test)'; END $$; "
           "CREATE TRIGGER refuse BEFORE INSERT ON metrics FOR EACH STATEMENT EXECUTE FUNCTION refuse()")

    rc, out, err = run_cli(["repair"], {"DATABASE_URLS": "|".join(db.url() for db in fresh_pair),
                                        "REPAIR_LOOKBACK": "0s"}, timeout=120)
    assert rc == 1, out + err
    failed = [e for e in log_events(out, "maint-error") if e.get("step") == "repair-insert"]
    assert [e["db"] for e in failed] == ["2"] and "no space left" in failed[0]["error"], out
    done = log_events(out, "repair-done")
    assert (done[0]["copied_db1"], done[0]["copied_db2"]) == (str(len(missing_1)), "0"), out
    assert ids(a) == {r["id"] for r in rows}
    assert ids(a) - ids(b) == {r["id"] for r in missing_2}

    b.psql("DROP TRIGGER refuse ON metrics")
    summary = repair(fresh_pair)
    assert (summary["copied_db1"], summary["copied_db2"]) == ("0", str(len(missing_2))), summary["stdout"]
    assert ids(b) == {r["id"] for r in rows}


def test_a_copy_refused_as_a_duplicate_is_sent_again_with_on_conflict(fresh_pair):
    """Repair inserts the rows a database lacked a moment ago without ON CONFLICT. Should
    one have arrived meanwhile (a hint handed off, another repair), the database refuses the
    statement as a duplicate and stores none of it: it is sent again with ON CONFLICT DO
    NOTHING, and every row is copied. Here database 2 refuses one statement once, as a unique
    index does (a trigger raising unique_violation)."""
    a, b = fresh_pair
    now = int(time.time())
    rows = fill_and_roll_up(fresh_pair, now)
    hour = (now - 20 * HOUR) // HOUR * HOUR
    missing_2 = [r for r in rows if hour <= r["bucket"] < hour + HOUR and r["name"] in ("fast.s00", "fast.s01")]
    assert len(missing_2) > 2
    delete(b, missing_2)
    gc_once(fresh_pair)
    b.psql("CREATE SEQUENCE refused_once; "
           "CREATE FUNCTION refuse_once() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN "
           "IF nextval('refused_once') = 1 THEN "
           "RAISE unique_violation USING MESSAGE = 'refused once for the test'; END IF; "
           "RETURN NEW; END $f$; "
           "CREATE TRIGGER refuse_once BEFORE INSERT ON metrics FOR EACH ROW EXECUTE FUNCTION refuse_once()")

    summary = repair(fresh_pair)
    retried = log_events(summary["stdout"], "repair-insert-retry")
    assert [e["db"] for e in retried] == ["2"] and "23505" in retried[0]["error"], summary["stdout"]
    assert not log_events(summary["stdout"], "maint-error"), summary["stdout"]
    assert (summary["copied_db1"], summary["copied_db2"]) == ("0", str(len(missing_2))), summary["stdout"]
    assert ids(b) == {r["id"] for r in rows}
