"""Schema creation and migration: a database that appears late, the original
m2pg's table, and two processes migrating the same databases at once."""

from m2pg_sys import (STATS, assert_created, assert_points, assert_read_ok, metric, new_id,
                      post_until_landed, unique_name, wait_in_all, wait_until)

OLD_SCHEMA = """
create table metrics(id uuid, bucket int, name text, count numeric, mean numeric,
                     median numeric, min numeric, max numeric, perc95 numeric,
                     perc99 numeric, last numeric);
create index metrics_by_id on metrics(id);
create index metrics_by_name_bucket on metrics(name, bucket);
"""

OLD_ROW = dict(count=1, mean=2.5, median=2, min=1, max=4, perc95=3.9, perc99=3.99, last=3)
OLD_BUCKET = 1355202720


def test_database_unreachable_at_start_gets_the_schema_and_writes_once_it_is_up(
        pg_factory, m2pg_factory):
    db1 = pg_factory("db1")
    db2 = pg_factory("db2", start=False)
    svc = m2pg_factory([db1, db2], write_timeout_ms=500, read_timeout_ms=1500)
    r = svc.health()
    assert r.status == 200 and r.json["databases"] == 2, r
    # /health answers before a database has its schema; a write sent before
    # db1 has one may rightly outlast the 500 ms WRITE_TIMEOUT_MS.
    wait_until(lambda: svc.health().json.get("connected") == 1, 10,
               message="/health to report db1 connected")
    mid = assert_created(svc.post(metric(unique_name("early"))))
    assert db1.has_id(mid)

    db2.start()
    post_until_landed(svc, [db1, db2], timeout=5, prefix="late")
    assert db2.has_metrics_table()
    wait_until(lambda: svc.health().json.get("connected") == 2, 5,
               message="/health to report both databases connected")


def test_original_m2pg_table_is_migrated_and_its_rows_are_kept(pg_factory, m2pg_factory):
    dbs = [pg_factory("db1"), pg_factory("db2")]
    old_id = new_id()
    values = ", ".join(str(OLD_ROW[s]) for s in STATS)
    for db in dbs:  # the original m2pg stored the same row in every database
        db.psql(OLD_SCHEMA)
        db.psql("insert into metrics values ('%s', %d, 'old.metric', %s)"
                % (old_id, OLD_BUCKET, values))
    svc = m2pg_factory(dbs)
    svc.dbs = dbs

    def read_old():
        r = svc.get_metrics(name="^old\\.metric$", resolution="minute",
                            **{"from": OLD_BUCKET - 60, "to": OLD_BUCKET + 60})
        return r if r.status == 200 and r.json else None

    r = wait_until(read_old, 10, message="the old row to be readable")
    series = assert_read_ok(r)
    assert list(series) == ["old.metric"]
    for stat in STATS:
        assert_points(series["old.metric"][stat], [(OLD_BUCKET, OLD_ROW[stat])], exact=True)

    mid = assert_created(svc.post(metric("new.metric", bucket=OLD_BUCKET, count=2)))
    wait_in_all(dbs, mid)
    for db in dbs:
        assert db.count_rows("name = 'old.metric'") == 1
        assert db.row(old_id)["bucket"] == OLD_BUCKET


def test_two_processes_starting_together_on_fresh_databases_both_serve(
        fresh_pair, m2pg_factory):
    procs = [m2pg_factory(fresh_pair, wait=False), m2pg_factory(fresh_pair, wait=False)]
    for p in procs:
        p.wait_healthy()
    for p in procs:
        mid = assert_created(p.post(metric(unique_name("twin"))))
        wait_in_all(fresh_pair, mid)
    for p in procs:
        p.assert_alive()
