"""The words a reply is read by: agreement, refusal, doubt, conditions, and the verbs of each kind of change.

Most are fixed patterns; the two that name a party (who agrees, who signs) are built for each plan from its own
names by `confirm_pattern` and `sign_will_pattern`.
"""

from __future__ import annotations

import re
from functools import cache

from pipeline.plan.names import name_key

NEGATION = re.compile(
    r"\b(?:not|never|no longer|cannot|can ?not|unable|yet to|hold off|neither|nor|nothing)\b|n't\b|n’t\b",
    re.IGNORECASE,
)
CONDITION = re.compile(
    r"\b(?:once|if|when|after|provided|providing|pending|subject to|assuming|as long as|until|unless"
    r"|as soon as|depending|contingent|upon|conditional|conditionally|except|excepting|barring|so long as"
    r"|only after|but only|with the exception)\b",
    re.IGNORECASE,
)
HEDGE = re.compile(
    r"\b(?:i think|i believe|probably|mostly|should be (?:fine|ok|okay|good)|at first glance|so far|for now"
    r"|more or less|in principle|tentative(?:ly)?|preliminar\w*|broadly|generally|likely|maybe|perhaps|might"
    r"|(?:will|'ll|’ll|shall|going to|need to|needs to|have to|has to|want to|would like to|hope to|expect to)"
    r" (?:\w+ )?(?:confirm|get back|review|let you know|come back|check|discuss|revert|circle back|sign off)"
    r"|to confirm|let me (?:confirm|check|review)|run (?:it|this) by|check with|get back to you|on first read"
    r"|in theory|almost|nearly|largely|roughly|partially)\b",
    re.IGNORECASE,
)
_CONFIRM_START = (
    r"(?:^\s*(?:confirmed|approved|agreed|accepted|confirm|correct|lgtm|all good|looks good|sounds good"
    r"|works for us|works for me)\b"
)
# After the one who agrees ("we", "I", the buyer's name): "we confirm", "<buyer> can approve".
_CONFIRM_REST = (
    r"\s+(?:\w+\s+)?(?:confirm|approve|agree|accept)\b"
    r"|\b(?:is|are|as|all|fully|hereby|plan|timeline|dates?|schedule|this|everything|it)\s+(?:\w+\s+)?"
    r"(?:confirmed|approved|agreed|accepted)\b"
    r"|\bconfirmed\b(?= from| on| by (?:me|us)| for (?:me|us)| here|[.!,]|$)"
    r"|\blooks? (?:good|great|fine|right|correct|ok|okay)\b|\b(?:sounds?|seems?) (?:good|great|fine|right)\b"
    r"|\b(?:works?|working) (?:for (?:us|me|both)|fine|well)\b|\bwe(?:'re| are) (?:good|fine|aligned|set|ok)\b"
    r"|\ball good\b|\bmatches (?:what we|our)\b|\bthat'?s (?:right|correct)\b|\bgo ahead\b|\bhappy with\b"
    r"|\bgood to go\b|\bon board\b|\blgtm\b|\bno (?:changes|objections|comments|concerns) (?:from|on) (?:our|my)\b"
    r"|\bnothing to (?:add|change)\b|\b(?:is|are|look|looks|seem|seems) (?:fine|good|ok|okay|correct|right)\b"
    r"|\bfine (?:by|with|for) (?:me|us)\b|\bagreed\b)"
)
# A bare "OK" or "Fine." agrees with the line it answers in an inline reply; on its own it may only acknowledge.
WEAK_CONFIRM = re.compile(
    r"^\s*(?:yes|yep|yeah|ok|okay|fine|good|great|perfect|correct|works|agreed|sure|excellent|wonderful|brilliant)"
    r"(?:\s*[,!.-]?\s*(?:thanks|thank you|thanks a lot|many thanks|thx|please|yes))?\s*[.!]*\s*$",
    re.IGNORECASE,
)
# A casual agreement standing alone ("Sounds good", "Yes, looks good to me", "Sounds good, talk then") answers
# whatever the reply answers: a question of the seller's as well as the plan, so it is a short answer like "Yes".
CASUAL_CONFIRM = re.compile(
    r"^\s*(?:(?:yes|yep|yeah|ok|okay|great|perfect)\s*[,!.-]?\s*)?(?:(?:that|this|it|all)\s+)?"
    r"(?:(?:sounds?|looks?|seems?)\s+(?:good|great|fine|perfect|ok|okay)(?:\s+to\s+(?:me|us))?|all good"
    r"|works for (?:me|us))(?:\s*[,!.-]?\s*(?:thanks|thank you|thanks a lot|many thanks|thx|cheers"
    r"|talk (?:then|soon)|see you (?:then|there)))?\s*[.!]*\s*$",
    re.IGNORECASE,
)
RESERVATION = re.compile(
    r"\b(?:but|however|except|although|though|while|whereas|apart from|aside from|other than|besides|save for"
    r"|excluding|most of|some of|part of|parts of|in part|concerns?|concerned|worried|worry|tight|issues?|problems?"
    r"|i'd say|i would say|i guess|i suppose|seems|overall|(?:a few|some|a couple of|minor|small) (?:comments|changes"
    r"|edits|tweaks|points|questions|notes|things)|comments? (?:below|inline|in line|attached))\b|\bi’d say\b",
    re.IGNORECASE,
)
# A sentence that takes back or pauses what was said holds every confirmation in the reply.
RETRACT = re.compile(
    r"\b(?:hold off|wait|scratch that|disregard|ignore (?:my|the|that) (?:last|previous|earlier)|on second thought"
    r"|not yet|hang on|hold on|take (?:that|it) back|retract|just kidding|kidding|j/k)\b"
    # "Looks good to me... NOT.": a "not" standing alone, or after an ellipsis, takes back what came before.
    r"|^\W*not\W*$|(?:\.\.\.|…)\s*not\b",
    re.IGNORECASE,
)
# Agreement put off to later or to someone else, in any sentence of the reply: no confirmation of the whole plan.
DEFER = re.compile(
    r"\b(?:get back to you|come back to you|revert|circle back|run (?:it|this) by|check with"
    r"|(?:will|'ll|’ll|need to|have to|going to)\s+(?:\w+\s+)?(?:review|confirm|discuss|check|share|take a"
    r"(?: closer)? look|look (?:at|into|over)|go (?:over|through))"
    r"|forward\w*\s+(?:it\s+|this\s+)?to\s+\S+\s+for|for (?:\w+\s+)?(?:approval|sign-?off|review)"
    r"|still (?:checking|reviewing|looking|going through|waiting|discussing|working through))\b",
    re.IGNORECASE,
)
# "Confirmed receipt", "confirming I got it": the mail arrived; nothing is agreed.
RECEIPT = re.compile(
    r"\b(?:confirm\w*|acknowledg\w*)\s+(?:the\s+|your\s+)?receipt\b|\breceipt\s+(?:is\s+)?(?:confirmed|acknowledged)\b"
    r"|\bconfirm\w*\s+(?:that\s+)?(?:i|we)\s+(?:have\s+|'ve\s+|’ve\s+)?(?:got|received|recieved|have)\b"
    r"|^\W*(?:received|got it|got this)\b",
    re.IGNORECASE,
)
# What a confirmation is about when it is not the plan: "I confirm the meeting on Tuesday", "confirm attendance".
OTHER_OBJECT = re.compile(
    r"\b(?:attendance|invite|invitation|appointment|booking|reservation|registration|webinar|room|slot"
    r"|calendar|receipt|delivery|order number|address|password|account|subscription)\b"
    r"|\b(?:at\s+)?\d{1,2}(?::\d{2})?\s*(?:am|pm|a\.m\.|p\.m\.)|\bat\s+\d{1,2}:\d{2}\b|\bat (?:noon|midday)\b",
    re.IGNORECASE,
)
EVERYTHING_ELSE = re.compile(
    r"\b(?:everything else|the rest|all (?:the )?other|otherwise|all else|remaining (?:items|steps|dates|milestones)"
    r"|other (?:items|steps|dates|milestones))\b",
    re.IGNORECASE,
)
DECLINE = re.compile(
    r"\b(?:(?:decided|chosen|chose|choose|going|opted|opt|plan|planning|have)\s+(?:not to|to not)\s+"
    r"(?:move forward|proceed|go ahead|pursue|continue|buy|purchase|sign|move ahead)"
    r"|not (?:be )?(?:moving|going) (?:forward|ahead)|no longer (?:interested|pursuing|moving forward|considering)"
    r"|(?:won't|will not|cannot|can't|are not going to|aren't going to) (?:be )?(?:moving forward|proceed|proceeding"
    r"|go ahead|going ahead|pursue|pursuing|move forward|moving ahead|buy|purchase)"
    r"|(?:withdraw|withdrawing|pull out|pulling out) (?:from|of)\b"
    r"|(?:go|going|went|decided to go|selected|chose|chosen) with (?:another|a different|an other|other|a competing)"
    r" (?:vendor|provider|supplier|solution|partner|company|tool|product)"
    r"|(?:cancel|cancelling|canceling|terminate|end|ending|stop|stopping) (?:the|this|our) "
    r"(?:project|deal|evaluation|process|initiative|purchase|engagement)"
    r"|not (?:interested|a (?:good )?fit|the right fit)|pass on this|(?:decline|declining) (?:the|this|your)"
    r" (?:plan|proposal|offer)"
    # Plain words: staying with what they have, another direction, a competitor chosen, passing.
    r"|(?:stay|staying|stick|sticking|remain|remaining|keep|keeping)\s+(?:with\s+)?(?:our|the)\s+"
    r"(?:current|existing|present|incumbent)\s+(?:\w+\s+)?(?:provider|vendor|supplier|solution|partner|tool|system"
    r"|platform|setup|contract|process)"
    r"|(?:go|going|gone|went|head|heading|move|moving|take|taking)\s+(?:in\s+)?(?:another|a different|an other"
    r"|other)\s+direction"
    r"|(?:chose|chosen|choose|selected|picked|went with|going with|signed with)\s+(?:a|another|one of your)\s+"
    r"competitors?|(?:we|i)(?:'ll|’ll| will)\s+(?:have to\s+)?pass\b(?!\s+(?:it|this|that)\s+(?:on|along|to))"
    r"|decided against (?:it|this|moving|going|the (?:purchase|deal|project|proposal|plan))"
    r"|(?:chose|chosen|choose|selected|picked|decided on)\s+(?:another|a different|an alternative|a competing)\s+"
    r"(?:vendor|provider|supplier|solution|partner|company|tool|product|platform)"
    r"|(?:project|deal|evaluation|initiative|purchase|engagement)\s+(?:is|was|has been|have been|got)\s+"
    r"(?:cancel+ed|killed|shelved|scrapped|terminated|called off))\b",
    re.IGNORECASE,
)
GREETING = re.compile(
    r"^\s*(?:hi|hello|hey|dear|good (?:morning|afternoon|evening)|morning|hallo|bonjour|hola)\b[^.?!]{0,40}[,!.:]?\s*$",
    re.IGNORECASE,
)
CLOSING = re.compile(
    r"^\s*(?:thanks|thank you|many thanks|best|best regards|regards|kind regards|cheers|sincerely|thx|ty"
    r"|warm regards|all the best|talk soon|speak soon)\b"
    # "Thanks but we went with a competitor" says more than thanks.
    r"(?![^.?!]*\b(?:but|however|though|although|unfortunately|sadly|we|we've|we're|i|i'm|i've|i'll)\b)"
    r"[^.?!]{0,40}[,!.]?\s*$",
    re.IGNORECASE,
)
FILLER = re.compile(
    r"^\s*(?:comments?|answers?|replies|responses|notes?|see (?:my )?(?:comments|answers|notes)?)\s*(?:are\s+)?"
    r"(?:inline|in line|below|beneath)\b.{0,30}$",
    re.IGNORECASE,
)
REQUEST = re.compile(
    r"\?\s*$|\b(?:please|pls|can we|could we|can you|could you|would you|would it be possible|i'd like|we'd like"
    r"|i would like|we would like|let's|let us|need|needs|should|must|want|prefer|rather|instead|move|push"
    r"|change|add|remove|drop|postpone|delay|reschedule|shift|swap|replace|cancel|skip|include|own|owner)\b",
    re.IGNORECASE,
)
# A part of a sentence that asks for something, said any way: a question, a request, a want, a change's verb.
# Used to tell the halves of a compound sentence apart ("move the pilot; the board wants a demo too"): a half
# that asks for nothing ("Feb 17 does", "everything else is fine") belongs to the half before it.
ASKS = re.compile(
    r"\?\s*$|^\s*also\b|\b(?:please|pls|can we|could we|can you|could you|can your|could your|would you"
    r"|would it be possible|i'd like|we'd like|i would like|we would like|let's|let us|wants?|wanted|needs?|needed"
    r"|requires?|prefer\w*|move|push|shift|reschedul\w*|postpon\w*|delay|bring forward|pull in|add|include|remove"
    r"|drop|skip|cancel|change|swap|replace|instead|rename|own|owner|assign|reassign|hand over|take over"
    r"|make (?:it|this|that|them))\b",
    re.IGNORECASE,
)
# A sentence asking for a change of the plan, as against a question or a remark for the seller to answer.
CHANGE_WORDS = re.compile(
    r"\b(?:move|push|shift|reschedul\w*|postpon\w*|delay\w*|bring forward|pull in|earlier|later|sooner|add|include"
    r"|remove|drop|skip|cancel|change|swap|replace|instead|rename|call it|own|owner|assign|reassign|hand over"
    r"|take over)\b",
    re.IGNORECASE,
)
MOVE_VERB = re.compile(
    r"\b(?:move|moving|moved|push|pushing|pushed|shift|shifting|reschedul\w*|postpon\w*|delay\w*|slip\w*"
    r"|bring|bringing|pull|pulling|change|changing|do|hold|have|schedule|put|set|make|plan|aim|target)\b",
    re.IGNORECASE,
)
MOVE_HINT = re.compile(
    r"\binstead\b|\bearlier\b|\blater\b|\bsooner\b"
    r"|\brather\b|\bprefer\w*\b|\bworks? better\b|\bwould be better\b|\bbetter on\b"
    r"|\b(?:should|needs? to|must|has to|have to|will have to|would need to) (?:be|happen|take place)\b"
    r"|\b(?:doesn't|does not|won't|will not|can't|cannot|don't|do not) work\b"
    # "we need another week for this one": more time asked for is a move by that much
    r"|\b(?:need|needs|needed|take|takes|give (?:us|me|them)|want|could use)\s+(?:another|an extra|a further"
    r"|(?:\d{1,2}|one|two|three|four|a couple of)\s+(?:more|extra))\s+(?:days?|weeks?)\b",
    re.IGNORECASE,
)
MOVE_NEGATED = re.compile(
    r"\b(?:not|never|n't|no need to|without)\s+(?:\w+\s+)?(?:move|moving|push|pushing|shift|reschedul\w*|postpon\w*"
    r"|delay\w*|change|changing)\b",
    re.IGNORECASE,
)
CONDITIONAL_START = re.compile(
    r"^\s*(?:if|unless|in case|assuming|provided|should (?:the|we|it|our|your)|when|once|depending)\b",
    re.IGNORECASE,
)
UNSURE_QUESTION = re.compile(
    r"\b(?:should we|do we need|does it make sense|would it make sense|is it worth|do you think|what if"
    r"|shall we|any chance)\b",
    re.IGNORECASE,
)
# A question asking who: "Who from Lumen will run the workshop?" names the seller only to ask who there will.
WHO_QUESTION = re.compile(r"^\s*(?:(?:and|but|so|also)\s+)?(?:who|whom|whose|which)\b", re.IGNORECASE)
ANCHOR_WORDS = re.compile(
    r"\b(before|after|prior to|ahead of|following|until|ahead|since)\s+(?:the\s+|our\s+|your\s+)?$", re.IGNORECASE
)
PRONOUN = re.compile(r"\b(?:it|that|this|this one|that one|them|those)\b", re.IGNORECASE)
TARGET = re.compile(
    r"\b(?:target(?: date)?|signature(?: date)?|signing(?: date)?|sign(?:ing)? date|po date|purchase order date"
    r"|close date|closing date|decision date|go[- ]no[- ]go(?: date)?)\b",
    re.IGNORECASE,
)
# After the one who signs ("we", "I", the buyer's name, a signer's name): "we will sign", "<signer> can decide".
_SIGN_WILL_REST = (
    r"\s+(?:will|'ll|’ll|can|could|expect to|plan to|aim to|want to|intend to|are going to|would)"
    r"\s+(?:only\s+|now\s+|realistically\s+|likely\s+)?(?:sign|issue the po|place the order|decide)\b"
)
STATUS_DONE = re.compile(
    r"\b(?:is|are|was|were|'s|’s|has been|have been|got)\s+(?:now\s+|already\s+|all\s+|fully\s+|officially\s+)*"
    r"(?:done|complete|completed|finished|over|wrapped up|behind us|delivered|concluded)\b"
    r"|\b(?:we|i|they|you|team|it)\s+(?:have\s+|'ve\s+|’ve\s+|already\s+|just\s+|successfully\s+)*"
    r"(?:completed|finished|did|held|ran|wrapped up|delivered|concluded)\b"
    r"|(?:^|\b[Mm]\d{1,3}\s*:?\s*|\bstep \d{1,3}\s*:?\s*|\bitem \d{1,3}\s*:?\s*)(?:done|complete|completed|finished)\b"
    r"|\btook place\b|\bhappened\b",
    re.IGNORECASE,
)
FUTURE = re.compile(
    r"\b(?:will|'ll|’ll|shall|going to|to be|should be|expect|expected|by (?:the )?(?:end|next)|plan to|hope)\b",
    re.IGNORECASE,
)
REMOVE = re.compile(
    r"\b(?:remove|removing|drop|dropping|delete|deleting|cut|skip|skipping|cancel|cancelling|canceling|scrap|scrapping"
    r"|eliminate|take out|take off|strike|get rid of|lose)\b",
    re.IGNORECASE,
)
NOT_NEEDED = re.compile(
    r"\b(?:(?:don't|do not|no longer|won't|will not|doesn't|does not)\s+need|no need for|(?:not|no longer|isn't"
    r"|is not|aren't|are not)\s+(?:needed|necessary|required)|(?:unnecessary|redundant)\b|can go\b|can be dropped)",
    re.IGNORECASE,
)
REMOVE_NEGATED = re.compile(
    r"\b(?:not|n't|never|no need to)\s+(?:\w+\s+)?(?:remove|drop|delete|cut|skip|cancel|scrap)\b", re.IGNORECASE
)
_OWN_VERB = (
    r"(?:own|take over|take|handle|run|lead|drive|be responsible for|be the owner of|be in charge of|manage"
    r"|look after|coordinate)"
)
# Pronouns in any case; a name only when written with a capital (so "the" or "will" never passes for one).
# Latin names with accents (Zoë Ångström) and names in CJK or Hangul script (李雷), written without spaces.
_UPPER = "A-ZÀ-ÖØ-Þ\u0100-\u017f"
_LOWER = "a-zß-öø-ÿ\u0100-\u017f"
_NAME = rf"(?-i:[{_UPPER}][{_LOWER}]+(?:\s+[{_UPPER}][{_LOWER}]+)?)|[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]{{2,6}}"
_WHO = rf"(?P<who>(?:your team|our team|my team|both of us|we|you|I)\b|{_NAME})"
REASSIGN = (
    re.compile(
        rf"(?:^|[\s,;(]){_WHO}\s+(?:will|'ll|’ll|can|should|shall|is going to|are going to|am going to|would"
        rf"|want to|wants to|needs? to|has to|have to|could)\s+(?:now\s+|also\s+|instead\s+|please\s+)?"
        rf"(?:{_OWN_VERB})\b"
        r"(?P<rest>.*)$",
        re.IGNORECASE,
    ),
    # "Can <name> own the terms review instead of me?"
    re.compile(
        rf"\b(?:can|could|would|should|shall|may)\s+{_WHO}\s+(?:please\s+)?(?:{_OWN_VERB})\b(?P<rest>.*)$",
        re.IGNORECASE,
    ),
    re.compile(
        rf"\b(?:assign|reassign|give|hand|transfer)\b(?P<rest>.*?)\b(?:over\s+)?to\s+{_WHO}\b",
        re.IGNORECASE,
    ),
    re.compile(rf"\b(?:owned|led|run|handled|driven|managed)\s+by\s+{_WHO}", re.IGNORECASE),
    re.compile(rf"\bmake\s+{_WHO}\s+(?:the\s+)?owner\b(?P<rest>.*)$", re.IGNORECASE),
    re.compile(rf"\b(?:have|let)\s+{_WHO}\s+(?:{_OWN_VERB})\b(?P<rest>.*)$", re.IGNORECASE),
    re.compile(rf"\bowner\b(?P<rest>.*?)\b(?:should be|to be|is now|will be|to)\s+{_WHO}", re.IGNORECASE),
)
ADD = re.compile(
    r"\b(?:add|adding|include|including|insert|inserting|put in)\s+(?:also\s+|in\s+)?"
    r"(?P<art>a|an|another|one more|some|the)?\s*(?P<title>.+)$"
    r"|\b(?:schedule|plan|set up|book|organi[sz]e|arrange)\s+(?:also\s+)?(?P<art2>a|an|another|one more)\s+"
    r"(?P<title2>.+)$"
    r"|\b(?:we(?:'d| would| will)?|you(?:'d| would)?|there)\s+(?:also\s+)?(?:need|needs|should be|must be"
    r"|needs to be|has to be|want)\s+(?P<art3>a|an|another|one more)\s+(?P<title3>.+)$",
    re.IGNORECASE,
)
ADD_NEGATED = re.compile(r"\b(?:not|n't|never|no need to)\s+(?:\w+\s+)?(?:add|include|insert)\b", re.IGNORECASE)
TITLE_END = re.compile(
    r"\s+(?:before|after|prior to|ahead of|following|between|once|no later than|to the (?:plan|timeline|schedule"
    r"|list|mutual plan)|as (?:a|an) (?:step|milestone|item|activity)|so that|so we|because|since|which|owned by"
    r"|led by|run by|if|when|and then|then|too|as well|please|(?:to|in|into|on) (?:the|our|your|my|this|that))\b"
    r"|\s*[,;.?!(]|\s+[-–—]\s",
    re.IGNORECASE,
)
# A new step is an activity: "a security review", "a SOC 2 walkthrough"; "our CFO" or a person's name is not.
ACTIVITY = re.compile(
    r"\b(?:review|meeting|call|demo|demonstration|workshop|session|check|walkthrough|walk-through|step|presentation"
    r"|training|test|testing|audit|approval|sign-?off|visit|pilot|poc|proof of concept|kick-?off|briefing|assessment"
    r"|evaluation|reference|negotiation|onboarding|setup|set-up|installation|trial|analysis|report|questionnaire|rfp"
    r"|rfi|rfq|validation|deep dive|deep-dive|q&a|interview|survey|sync|huddle|readout|read-out|review board"
    r"|committee|steerco|approval|budget|procurement|contract|redline|signature|integration|migration|rollout"
    r"|go-live|handover|hand-off|handoff|deadline|milestone|phase|checkpoint|decision|vote|board meeting)s?\b",
    re.IGNORECASE,
)
ADD_OWNER = (
    re.compile(rf"\b(?:owned|led|run|handled|organi[sz]ed|driven)\s+by\s+{_WHO}", re.IGNORECASE),
    re.compile(
        rf"(?:^|\s){_WHO}\s+(?:will|'ll|’ll|can|should|would)\s+(?:own|run|organi[sz]e|lead|set up|handle|do"
        r"|book|arrange|schedule)\b",
        re.IGNORECASE,
    ),
)


# Capitalised words that start a sentence or name a department, never a person who could own a step.
NOT_NAMES = {
    "Please", "Could", "Can", "Would", "Should", "It", "This", "That", "Also", "And", "But", "So",
    "Then", "The", "Our", "Your", "They", "He", "She", "Everything", "Nobody", "Someone", "Who", "What", "Legal",
    "Procurement", "Finance", "IT", "Security",
}  # fmt: skip


@cache
def confirm_pattern(buyer: tuple[str, ...]) -> re.Pattern[str]:
    """An agreement, in the first person or in one of the buyer's names ("we confirm", "<buyer> can approve")."""
    return re.compile(_CONFIRM_START + r"|\b(?:" + _either(("i", "we", "both"), buyer) + ")" + _CONFIRM_REST, re.I)


@cache
def sign_will_pattern(signers: tuple[str, ...]) -> re.Pattern[str]:
    """A date for the signature, by "we", "I" or one of the signers' names ("we will sign", "<name> can decide")."""
    return re.compile(r"\b(?:" + _either(("we", "i"), signers) + ")" + _SIGN_WILL_REST, re.I)


def _either(words: tuple[str, ...], names: tuple[str, ...]) -> str:
    """An alternation of fixed words and names; a name of several words matches across any spaces, and a name
    with accents matches without them too ("Zoë Ångström" as "Zoe Angstrom")."""
    forms = dict.fromkeys(form for name in names for form in (name, name_key(name)) if form.strip())
    spelled = [r"\s+".join(re.escape(part) for part in form.split()) for form in forms]
    return "|".join([*words, *sorted(spelled, key=len, reverse=True)])
