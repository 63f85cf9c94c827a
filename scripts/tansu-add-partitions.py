#!/usr/bin/env python3
"""Grows a topic of a stopped tansu broker's SQLite storage to N partitions, as CreatePartitions
would (the new partitions are empty). tansu 0.6 serves no CreatePartitions request.

    scripts/tansu-add-partitions.py STATE/kafka/tansu.db TOPIC N
"""
import sqlite3
import sys

db, topic, partitions = sys.argv[1], sys.argv[2], int(sys.argv[3])
c = sqlite3.connect(db)
found = c.execute("select id, partitions from topic where name = ?", (topic,)).fetchone()
if found is None:
    sys.exit(f"no topic {topic} in {db}")
topic_id, have = found
for p in range(have, partitions):
    t = c.execute("insert into topition (topic, partition) values (?, ?)", (topic_id, p)).lastrowid
    c.execute("insert into watermark (topition, low, high) values (?, 0, 0)", (t,))
c.execute("update topic set partitions = max(partitions, ?) where id = ?", (partitions, topic_id))
c.commit()
