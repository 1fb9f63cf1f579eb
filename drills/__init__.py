"""Fault drills (issue #14): break a process, the database or the broker under load on a
stack of the drills' own, then check that nothing acknowledged was lost or doubled."""
