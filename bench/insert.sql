-- pgbench: the raw single-row ceiling m2pg's single POSTs are compared with. One prepared
-- INSERT per transaction into m2pg's own table (same definition, same indexes), the way one
-- POST stores one metric: a random id, a bucket, one of 100 names, eight float8 values.
\set n random(0, 99)
\set c random(1, 50)
INSERT INTO metrics (id, bucket, name, count, mean, median, min, max, perc95, perc99, last)
VALUES (gen_random_uuid(), now(), 'bench.metric.' || :n::text, :c, 1.5, 1.0, 0.5, 9.0, 8.0, 8.5, 2.0);
