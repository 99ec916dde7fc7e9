UPDATE {raw} SET quarantined = true WHERE row_no = ANY (%(row_nos)s)
