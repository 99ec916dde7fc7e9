-- Whether an alert of this kind was already recorded for this subject (alert once per freeze, per
-- report failure, per deadline).
SELECT EXISTS (SELECT 1 FROM stocksync.alerts WHERE kind = %(kind)s AND subject = %(subject)s)
