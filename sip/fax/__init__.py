"""Fax over Asterisk (res_fax_spandsp: T.38 where the far end offers it, else G.711 audio).

models.py (one row per fax, either way), document.py (PDF or image to TIFF-F, cover page, received TIFF to PDF:
ghostscript, libtiff and Pillow in subprocesses or threads, off the event loop), service.py (jobs written before
the API answers, claimed by the sender like the warning outbox claims deliveries, results from the dialplan's hangup
handlers; received faxes reported by the dialplan and handed to the composer to file).
"""
