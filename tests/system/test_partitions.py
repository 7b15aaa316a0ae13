"""Partitions of metrics: made ahead by the web process and by gc, the default partition for
what falls outside them, `m2pg migrate` converting an unpartitioned table in place, and gc
dropping whole partitions while writes go on."""

import re
import threading
import time

from m2pg_sys import (STATS, assert_created, assert_points, assert_read_ok, metric, new_id,
                      run_cli, unique_name, wait_in_all, wait_until)
from test_schema import OLD_BUCKET, OLD_ROW, OLD_SCHEMA

DAY = 86400
LOGFMT_PAIR = re.compile(r'([^\s=]+)=("(?:[^"\\]|\\.)*"|\S*)')


def events(text, at):
    out = []
    for line in text.splitlines():
        rec = {k: v[1:-1] if v.startswith('"') else v for k, v in LOGFMT_PAIR.findall(line)}
        if rec.get("at") == at:
            out.append(rec)
    return out


def run_maint(args, dbs, env=None, timeout=60):
    overrides = {"DATABASE_URLS": "|".join(db.url() for db in dbs)}
    overrides.update(env or {})
    return run_cli(args, overrides, timeout=timeout)


def partitions(db):
    """{partition: (lo, hi)} as Unix seconds (None for the default partition's bounds)."""
    rows = db.psql("select partition, extract(epoch from lo)::float8, extract(epoch from hi)::float8 "
                   "from m2pg_partitions()", check=False) or []
    return {r[0]: (r[1] and float(r[1]), r[2] and float(r[2])) for r in rows}


def partition_of(db, mid):
    return db.scalar("select tableoid::regclass::text from metrics where id = '%s'" % mid)


def day_start(t):
    return int(t) // DAY * DAY


def post_with_id(svc, obj, mid):
    r = svc.post(dict(obj, id=mid))
    assert r.status == 201 and r.json == mid, r


def read_point(svc, name, bucket):
    r = svc.get_metrics(name="^%s$" % re.escape(name), resolution="minute",
                        **{"from": bucket - 60, "to": bucket + 60})
    series = assert_read_ok(r)
    assert list(series) == [name], r
    return series[name]


def test_partitions_are_made_ahead_and_the_edges_land_in_the_default_partition(
        fresh_pair, m2pg_factory):
    svc = m2pg_factory(fresh_pair, extra_env={"PARTITION_AHEAD": "2"})
    today = day_start(time.time())
    expected = {today + k * DAY for k in range(3)}
    for db in fresh_pair:
        wait_until(lambda: expected <= {lo for lo, _ in partitions(db).values()}, 10,
                   message="partitions for today and the next two days in %s" % db.name)
        assert db.scalar("select relkind from pg_class where oid = 'metrics'::regclass") == "p"
        assert "metrics_default" in partitions(db)
    # Made by each connection's setup, before it takes an insert (an insert for a range being
    # attached would fail); partman logs those it makes later, hourly.

    now = int(time.time()) // 60 * 60
    cases = {"now": now, "past": OLD_BUCKET, "future": 4102444800}  # 2100-01-01
    ids = {}
    for label, bucket in cases.items():
        name = unique_name("edge." + label)
        mid = new_id()
        post_with_id(svc, metric(name, bucket=bucket, count=3), mid)
        # The retry of a write (same id, same bucket) is stored once.
        post_with_id(svc, metric(name, bucket=bucket, count=3), mid)
        wait_in_all(fresh_pair, mid)
        ids[label] = (name, mid, bucket)
    for db in fresh_pair:
        assert partition_of(db, ids["now"][1]) == "metrics_p" + time.strftime(
            "%Y%m%d", time.gmtime(now))
        assert partition_of(db, ids["past"][1]) == "metrics_default"
        assert partition_of(db, ids["future"][1]) == "metrics_default"
        for name, mid, _ in ids.values():
            assert db.count_rows("id = '%s'" % mid) == 1
    for name, mid, bucket in ids.values():
        assert_points(read_point(svc, name, bucket)["count"], [(bucket, 3)], exact=True)

    # A partition made over buckets the default partition holds takes its rows over.
    name = unique_name("edge.later")
    later = now + 6 * DAY
    mid = new_id()
    post_with_id(svc, metric(name, bucket=later, count=5), mid)
    wait_in_all(fresh_pair, mid)
    assert partition_of(fresh_pair[0], mid) == "metrics_default"
    rc, out, err = run_maint(["gc", "--once"], fresh_pair,
                             {"PARTITION_AHEAD": "7", "REPAIR_LOOKBACK": "0s"})
    assert rc == 0, out + err
    later_part = "metrics_p" + time.strftime("%Y%m%d", time.gmtime(later))
    made = [e for e in events(out, "partition-created") if e["partition"] == later_part]
    assert sorted(e["db"] for e in made) == ["1", "2"] and all(e["moved"] == "1" for e in made), out
    for db in fresh_pair:
        assert partition_of(db, mid) == later_part
        assert db.count_rows("id = '%s'" % mid) == 1
    assert_points(read_point(svc, name, later)["count"], [(later, 5)], exact=True)
    # Writes go on into the new partition.
    mid2 = assert_created(svc.post(metric(name, bucket=later + 60, count=1)))
    wait_in_all(fresh_pair, mid2)
    assert partition_of(fresh_pair[1], mid2) == later_part


CURRENT_SCHEMA = """
create table metrics (id uuid not null, bucket timestamptz not null, name text not null,
  count double precision, mean double precision, median double precision,
  min double precision, max double precision, perc95 double precision,
  perc99 double precision, last double precision, source text);
create unique index metrics_id_key on metrics (id);
create index metrics_by_name_bucket on metrics (name, bucket);
create index metrics_bucket_brin on metrics using brin (bucket);
create table metric_names (name text primary key);
"""


def test_migrate_converts_an_unpartitioned_table_with_rows_in_place(pg_factory, m2pg_factory):
    db = pg_factory("db1")
    db.psql(CURRENT_SCHEMA)
    now = int(time.time()) // 60 * 60
    rows = [dict(id=new_id(), bucket=now - k * 3600, name="kept.%d" % (k % 3), count=k)
            for k in range(200)]
    db.insert(rows)
    db.psql("analyze metrics")
    filenode = db.scalar("select pg_relation_filenode('metrics')")

    rc, out, err = run_maint(["migrate"], [db])
    assert rc == 0, out + err
    did = events(out, "migrate")
    assert len(did) == 1 and "converted" in did[0]["did"], out
    assert db.scalar("select relkind from pg_class where oid = 'metrics'::regclass") == "p"
    # The rows were not rewritten: the old table, renamed, is a partition with the same file.
    assert db.scalar("select pg_relation_filenode('metrics_legacy')") == filenode
    parts = partitions(db)
    assert parts["metrics_legacy"] == (float("-inf"), day_start(now) + DAY), parts
    assert "metrics_default" in parts
    assert events(out, "partition-created"), out
    assert db.count_rows() == 200
    assert db.scalar("select count(*) from metrics_legacy") == "200"
    assert db.scalar("select to_regclass('metrics_id_key')") is None

    rc, out, err = run_maint(["migrate"], [db])
    assert rc == 0, out + err
    assert [e["did"] for e in events(out, "migrate")] == ["nothing: already partitioned"], out

    svc = m2pg_factory([db])
    r = svc.get_metrics(name="^kept\\.0$", resolution="hour",
                        **{"from": now - 200 * 3600, "to": now})
    series = assert_read_ok(r, databases="1/1")
    assert len(series["kept.0"]["count"]) == 67, series
    # A late write into the legacy range, and one into a partition made ahead.
    late = assert_created(svc.post(metric("kept.0", bucket=now - 3 * DAY + 7)))
    ahead = assert_created(svc.post(metric("kept.0", bucket=now + DAY)))
    wait_in_all([db], late)
    wait_in_all([db], ahead)
    assert partition_of(db, late) == "metrics_legacy"
    assert partition_of(db, ahead).startswith("metrics_p")


def test_migrate_replaces_an_empty_unpartitioned_table(pg_factory):
    db = pg_factory("db1")
    db.psql(CURRENT_SCHEMA)
    rc, out, err = run_maint(["migrate"], [db])
    assert rc == 0, out + err
    assert "replaced" in events(out, "migrate")[0]["did"], out
    assert "metrics_legacy" not in partitions(db)
    assert db.scalar("select relkind from pg_class where oid = 'metrics'::regclass") == "p"


def test_migrate_converts_the_original_m2pg_table(pg_factory, m2pg_factory):
    dbs = [pg_factory("db1"), pg_factory("db2")]
    old_id = new_id()
    values = ", ".join(str(OLD_ROW[s]) for s in STATS)
    for db in dbs:
        db.psql(OLD_SCHEMA)
        db.psql("insert into metrics values ('%s', %d, 'old.metric', %s)"
                % (old_id, OLD_BUCKET, values))
        db.psql("insert into metrics values ('%s', %d, 'old.metric', %s)"  # the same row twice
                % (old_id, OLD_BUCKET, values))
    rc, out, err = run_maint(["migrate"], dbs)
    assert rc == 0, out + err
    assert [e["db"] for e in events(out, "migrate") if "converted" in e["did"]] == ["1", "2"], out
    for db in dbs:
        assert db.count_rows() == 1
        assert db.row(old_id)["bucket"] == OLD_BUCKET
        assert partition_of(db, old_id) == "metrics_legacy"
        assert db.scalar("select name from metric_names") == "old.metric"
    svc = m2pg_factory(dbs)
    series = read_point(svc, "old.metric", OLD_BUCKET)
    for stat in STATS:
        assert_points(series[stat], [(OLD_BUCKET, OLD_ROW[stat])], exact=True)


def test_migrate_brings_a_database_of_an_earlier_version_up_to_date(pg_factory):
    """A database set up before the rollups' m2pg_last type (its functions as they were then):
    migrate replaces its functions and adds the type, so gc rolls up and fills names with them."""
    db = pg_factory("db1")
    rc, out, err = run_maint(["migrate"], [db])
    assert rc == 0, out + err
    db.psql("DROP TYPE m2pg_last; "
            "CREATE OR REPLACE FUNCTION m2pg_names_fill_changed(OUT added bigint, OUT scanned integer, "
            "OUT partitions integer) LANGUAGE sql AS 'SELECT -1::bigint, 0, 0'")
    rc, out, err = run_maint(["migrate"], [db])
    assert rc == 0, out + err
    assert db.scalar("select to_regtype('m2pg_last') is not null") == "t"

    hour = (int(time.time()) // 3600 - 3) * 3600
    name = "upgraded.%s" % new_id()[:8]
    db.psql("insert into metrics (id, bucket, name, count, last) values "
            "('%s', to_timestamp(%d), '%s', 1, 5), ('%s', to_timestamp(%d), '%s', 1, 7)"
            % (new_id(), hour + 60, name, new_id(), hour + 120, name))
    rc, out, err = run_maint(["gc", "--once"], [db], env={"REPAIR_LOOKBACK": "0s"})
    assert rc == 0, out + err
    assert [e["added"] for e in events(out, "names-fill")] == ["1"], out
    assert all(e["failed"] == "0" for e in events(out, "rollup")), out
    assert db.scalar("select last from metrics_hour where name = '%s' and bucket = to_timestamp(%d)"
                     % (name, hour)) == "7"


def test_migrate_adds_the_byte_order_index_of_names_and_regexes_match_as_before(
        fresh_pair, m2pg_factory):
    """Databases migrated before the catalogue had its index in byte order get it from migrate
    (an anchored regex's prefix becomes a range of it); what a regex matches does not change,
    whatever comes after the prefix: other bytes, non-ASCII letters, alternatives."""
    dbs = fresh_pair
    rc, out, err = run_maint(["migrate"], dbs)
    assert rc == 0, out + err
    for db in dbs:
        db.psql("DROP INDEX metric_names_bytewise")
    rc, out, err = run_maint(["migrate"], dbs)
    assert rc == 0, out + err
    assert [e["did"] for e in events(out, "migrate")] == ["added the index of metric_names in byte order"] * 2, out
    rc, out, err = run_maint(["migrate"], dbs)
    assert [e["did"] for e in events(out, "migrate")] == ["nothing: already partitioned"] * 2, out
    for db in dbs:
        assert db.scalar("select pg_get_indexdef('metric_names_bytewise'::regclass)").endswith(
            '(name COLLATE "C")')

    svc = m2pg_factory(dbs)
    p = "rx%s." % new_id()[:8]
    names = [p + n for n in ("a", "ab", "b", "e", "\u00e9", "\u00ea", "e\u00e9", "\u00c9")] + [p[:-1] + "z"]
    for n in names:
        assert_created(svc.post(metric(n, bucket=OLD_BUCKET)))
    q = re.escape(p)
    cases = {
        "^%sa" % q: [p + "a", p + "ab"],
        "^%s\u00e9$" % q: [p + "\u00e9"],
        "^%s[e\u00e9]$" % q: [p + "e", p + "\u00e9"],
        "^%se" % q: [p + "e", p + "e\u00e9"],
        "^%s[^a-z]$" % q: [p + n for n in ("\u00e9", "\u00ea", "\u00c9")],
        "^%sab?$" % q: [p + "a", p + "ab"],
        "^%s(a|b)$" % q: [p + "a", p + "b"],
        "^%sa$|^%sz$" % (q, re.escape(p[:-1])): [p + "a", p[:-1] + "z"],
        "^%s" % re.escape(p[:-1]): names,
    }
    for regex, want in cases.items():
        series = assert_read_ok(svc.get_metrics(name=regex, resolution="minute",
                                                **{"from": OLD_BUCKET, "to": OLD_BUCKET + 59}))
        assert sorted(series) == sorted(want), (regex, sorted(series))


def test_gc_drops_old_partitions_and_deletes_in_the_boundary_one_while_writes_go_on(
        fresh_pair, m2pg_factory):
    svc = m2pg_factory(fresh_pair, write_timeout_ms=2000)
    for db in fresh_pair:
        db.wait_for_schema()
    now = int(time.time())
    cutoff = now - 5 * DAY
    for db in fresh_pair:
        db.psql("select m2pg_partitions_make(now() - interval '10 days', now(), 1)")
    name = unique_name("gc.part")
    expired = [dict(id=new_id(), bucket=now - k * DAY, name=name, count=1) for k in (9, 8, 7, 6)]
    expired.append(dict(id=new_id(), bucket=cutoff - 600, name=name, count=1))
    kept = [dict(id=new_id(), bucket=b, name=name, count=1)
            for b in (cutoff + 600, now - 2 * DAY, now - 60)]
    for db in fresh_pair:
        db.insert(expired + kept)
    old_parts = {p for p, (lo, hi) in partitions(fresh_pair[0]).items() if hi and hi <= cutoff}
    assert len(old_parts) >= 4, partitions(fresh_pair[0])

    stop = threading.Event()
    written, failures = [], []

    def writer():
        k = 0
        while not stop.is_set():
            r = svc.post(metric(name + ".live", bucket=int(time.time()) - k % 120, count=1))
            if r.status == 201:
                written.append(r.json)
            else:
                failures.append(r)
            k += 1
            time.sleep(0.01)

    t = threading.Thread(target=writer)
    t.start()
    try:
        time.sleep(0.3)
        rc, out, err = run_maint(["gc", "--once"], fresh_pair,
                                 {"RETENTION": "5d", "REPAIR_LOOKBACK": "0s"})
        time.sleep(0.3)
    finally:
        stop.set()
        t.join()
    assert rc == 0, out + err
    assert not failures, failures[:3]
    assert len(written) > 10
    drops = events(out, "gc-drop-partition")
    assert {(e["db"], e["partition"]) for e in drops} == {
        (d, p) for d in ("1", "2") for p in old_parts}, out
    for db in fresh_pair:
        left = partitions(db)
        assert not old_parts & set(left), left
        assert db.ids("name = '%s'" % name) == {r["id"] for r in kept}
    for mid in written:
        wait_in_all(fresh_pair, mid)


def test_gc_deletes_the_boundary_rows_name_by_name_early_in_a_day_and_by_bucket_later(fresh_pair):
    """A cutoff in the first quarter of its partition's day: gc finds the rows before it name by
    name (a walk of the index on (name, bucket)), which must reach every name, those with
    nothing to delete between them included; later in the day, by the bucket's BRIN index.
    Either way exactly the rows before the cutoff go, in both databases."""
    rc, out, err = run_maint(["migrate"], fresh_pair)
    assert rc == 0, out + err
    for db in fresh_pair:
        db.psql("select m2pg_partitions_make(now() - interval '10 days', now(), 1)")
    d = day_start(time.time()) - 6 * DAY
    names = ["gcwalk.%s" % n for n in ("a", "b.none", "c", "d.none", "e", "f")]

    def rows_of(day, cut):
        out = []
        for k, name in enumerate(names):
            early = [] if name.endswith(".none") else [day + 60 * k, cut - 60 - k]
            out += [dict(id=new_id(), bucket=b, name=name, count=1) for b in early + [cut + 60 + k, day + DAY - 60]]
        return out

    def run_gc(cut):
        rc, out, err = run_maint(["gc", "--once"], fresh_pair,
                                 {"RETENTION": "%ds" % (int(time.time()) - cut), "REPAIR_LOOKBACK": "0s"})
        assert rc == 0, out + err
        return out

    early_cut = d + 2 * 3600 + 1800  # within the first quarter of day d
    late_cut = d + DAY + 20 * 3600  # in the last quarter of day d + 1
    day1, day2 = rows_of(d, early_cut), rows_of(d + DAY, late_cut)
    for db in fresh_pair:
        db.insert(day1 + day2)
    like = "name LIKE 'gcwalk.%'"
    run_gc(early_cut)
    for db in fresh_pair:
        assert db.ids(like) == {r["id"] for r in day1 + day2 if r["bucket"] >= early_cut}, db.name
    out = run_gc(late_cut)
    assert len(events(out, "gc-drop-partition")) >= 2, out  # day d, in each database
    for db in fresh_pair:
        assert db.ids(like) == {r["id"] for r in day2 if r["bucket"] >= late_cut}, db.name


def store_gauges(svc):
    text = svc.request("GET", "/stats").body.decode()
    out = {}
    for line in text.splitlines():
        m = re.match(r'(m2pg_(?:partitions|default_partition_rows|rollup_lag_seconds|rollup_dirty_hours))'
                     r'\{db="(\d)"\} (-?\d+)$', line)
        if m:
            out[(m.group(1), int(m.group(2)))] = int(m.group(3))
    return out


def test_stats_shows_each_databases_partitions_and_rollup_lag(fresh_pair, m2pg_factory):
    svc = m2pg_factory(fresh_pair)
    wait_until(lambda: len(store_gauges(svc)) == 8, 10, message="the gauges of both databases")
    g = store_gauges(svc)
    for db in (1, 2):
        # Today and PARTITION_AHEAD (3) days ahead; nothing outside them; gc has not run.
        assert g[("m2pg_partitions", db)] == 4, g
        assert g[("m2pg_default_partition_rows", db)] == 0, g
        assert g[("m2pg_rollup_lag_seconds", db)] == -1, g
        assert g[("m2pg_rollup_dirty_hours", db)] == 0, g
    name = unique_name("gauges")
    for db in fresh_pair:
        db.psql("insert into metrics (id, bucket, name, count) values ('%s', now() - interval '3 hours', '%s', 1)"
                % (new_id(), name))
    rc, out, err = run_maint(["gc", "--once"], fresh_pair, {"REPAIR_LOOKBACK": "0s"})
    assert rc == 0, out + err
    # A late write lands in an hour gc rolled up.
    for db in fresh_pair:
        db.psql("insert into metrics (id, bucket, name, count) values ('%s', now() - interval '2 hours', '%s', 1)"
                % (new_id(), name))
    svc = m2pg_factory(fresh_pair)
    wait_until(lambda: len(store_gauges(svc)) == 8, 10, message="the gauges of both databases")
    g = store_gauges(svc)
    for db in (1, 2):
        # The watermark is the start of the last hour that ended 5 minutes ago or more.
        assert 300 <= g[("m2pg_rollup_lag_seconds", db)] <= 3900 + 60, g
        assert g[("m2pg_rollup_dirty_hours", db)] == 1, g
