"""Telephony on Asterisk: AMI session, calls, fax, pjsua2 phones."""
