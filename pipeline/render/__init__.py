"""What the buyer receives: the plan letter (letter.py, PDF/A-3b from a letterhead) and the emails around it
(email.py, with the letter and an .ics attached). Imports only pipeline.plan and pipeline.errors."""
