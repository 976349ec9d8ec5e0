"""What the buyer receives: the plan letter (letter.py, PDF/A-3b from a letterhead) and the emails around it
(email.py and notices.py, made with email_parts.py and mime.py, with the letter and an .ics attached).
Imports only pipeline.plan and pipeline.errors."""
