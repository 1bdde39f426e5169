"""Who is the agent and who the customer in a text transcript: the sidecar, names, then words.

In order, the first that says wins for each speaker:
1. the sidecar: `roles` by name (any case), then `agent`;
2. the speaker's label: role words ("Agent", "Agent Smith", "Support", "Rep", "Customer",
   "Caller", "Client 2", "Chatbot"; "Customer Service" is the agent), an email address on
   an agent domain (the ingest option `agent_domains`, or a support mailbox such as
   support@acme.com) or on a public mail provider (a customer), or the organisation the
   agent greets with ("thank you for calling Acme" makes "Acme Support" and
   "dana@acme.com" the agent);
3. what each speaker says (`speech.roles`: greetings, "how can I help", "I'd like to
   cancel my account"), when the conversation has two main speakers (more voices than
   that are a meeting or a conference call, where cues do not pair up);
4. the other side of a two-party conversation: once one main speaker's role is known,
   the other main speaker has the opposite one.

Meetings (the channel, or more than two speakers with a few turns each) keep their
participants' roles unknown unless a label or the sidecar says otherwise: a project
meeting has no agent and no customer, and words such as "let me check" are everyday
talk there. `unknown` stays only where nothing says.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from convolens.ingest.sidecar import Sidecar
from convolens.model import Channel, Role
from convolens.speech.roles import greeted_organisations, infer_roles

__all__ = ["name_role", "transcript_roles"]

# Labels of the agent's side; "customer service"/"support" phrases are checked first so
# that "Customer Care" is not read as the customer.
_AGENT_PHRASES = re.compile(
    r"\b(customer|client|technical|tech|it|member|guest) "
    r"(service|services|support|care|success|experience|relations|desk)\b"
)
_AGENT_WORDS = frozenset(
    {"agent", "agents", "support", "rep", "representative", "operator", "advisor", "adviser"}
    | {"csr", "helpdesk", "servicedesk", "concierge", "dispatcher", "dispatch", "technician"}
    | {"helpline", "hotline", "careline", "service"}
)
_CUSTOMER_WORDS = frozenset(
    {"customer", "customers", "caller", "client", "cust", "subscriber", "buyer", "shopper"}
    | {"consumer", "requester", "requestor", "enduser", "end-user", "visitor", "guest"}
    | {"patient", "passenger", "policyholder", "cardholder", "accountholder"}
)
_BOT_WORDS = frozenset({"bot", "chatbot", "ivr", "autoresponder", "voicebot", "assistantbot"})
_BOT_PHRASES = re.compile(r"\b(virtual (agent|assistant)|automated (system|agent|message))\b")
# Support mailboxes (as in the email adapter) mark their domain as the organisation's.
_AGENT_LOCAL_PARTS = frozenset(
    {"support", "help", "helpdesk", "service", "billing", "sales", "success", "care", "team"}
    | {"noreply", "no-reply", "hello", "accounts"}
)
_FREEMAIL = frozenset(
    {"gmail.com", "googlemail.com", "yahoo.com", "hotmail.com", "outlook.com", "live.com"}
    | {"icloud.com", "me.com", "aol.com", "gmx.de", "gmx.net", "web.de", "protonmail.com"}
)
_EMAIL = re.compile(r"[\w.+\-]+@(?P<domain>[\w\-]+(?:\.[\w\-]+)+)")
# A speaker with under this share of the words is not a main speaker (a diarisation
# splinter saying "Thanks!"): it neither decides the two-party rule nor gets its result.
_MAIN_SHARE = 0.1
_VOICE_TURNS = 3


def _words(label: str) -> list[str]:
    return re.findall(r"[a-z][a-z\-]*", label.casefold().replace("_", " "))


def name_role(
    name: str, *, agent_domains: Iterable[str] = (), organisations: Iterable[str] = ()
) -> Role | None:
    """The role a speaker label says, or None: "Agent Smith" -> agent, "Caller" -> customer."""
    folded = " ".join(name.casefold().split())
    domains = {d.strip().lstrip("@").casefold() for d in agent_domains if d.strip()}
    address = _EMAIL.search(folded)
    if address is not None:
        local = folded[: address.start("domain") - 1].rsplit(None, 1)[-1]
        domain = address["domain"]
        if any(domain == d or domain.endswith("." + d) for d in domains):
            return Role.agent
        if local.split("@")[0] in _AGENT_LOCAL_PARTS and domain not in _FREEMAIL:
            return Role.agent
        if domain in _FREEMAIL or domains:
            return Role.customer
    if _BOT_PHRASES.search(folded):
        return Role.bot
    if _AGENT_PHRASES.search(folded):
        return Role.agent
    words = _words(folded)
    if any(w in _BOT_WORDS for w in words):
        return Role.bot
    if any(w in _AGENT_WORDS for w in words):
        return Role.agent
    if any(w in _CUSTOMER_WORDS for w in words):
        return Role.customer
    for organisation in organisations:
        org = organisation.casefold()
        org_words = set(_words(org))
        if org_words and (org_words <= set(words) or _domain_names(folded, org)):
            return Role.agent
    return None


def _domain_names(folded: str, organisation: str) -> bool:
    """An address on the organisation's domain: "dana@acme.com" for "Acme"."""
    address = _EMAIL.search(folded)
    if address is None:
        return False
    compact = re.sub(r"[^a-z0-9]", "", organisation)
    labels = address["domain"].split(".")[:-1]
    return bool(compact) and any(re.sub(r"[^a-z0-9]", "", lab) == compact for lab in labels)


def transcript_roles(
    said: Mapping[str, Sequence[str]],
    *,
    sidecar: Sidecar | None = None,
    channel: Channel | str | None = None,
    agent_domains: Iterable[str] = (),
) -> dict[str, Role]:
    """Role per speaker label (label -> what they said, turn by turn, in order)."""
    sidecar = sidecar or Sidecar()
    domains = list(agent_domains)
    folded_roles = {key.casefold(): role for key, role in sidecar.roles.items()}
    whole = {name: "\n".join(turns) for name, turns in said.items()}
    organisations = [org for text in whole.values() for org in greeted_organisations(text)]
    roles: dict[str, Role] = {}
    for name in said:
        declared = sidecar.roles.get(name) or folded_roles.get(name.casefold())
        if declared is None and sidecar.agent and sidecar.agent.casefold() == name.casefold():
            declared = Role.agent
        if declared is None or declared is Role.unknown:
            declared = name_role(name, agent_domains=domains, organisations=organisations)
        roles[name] = declared or Role.unknown
    main = _main_speakers(whole)
    if str(channel or "") == Channel.meeting.value or len(_voices(said, whole)) > 2:
        return roles
    unknown_main = [name for name in main if roles[name] is Role.unknown]
    if len(main) == 2 and len(unknown_main) == 2:
        roles.update(infer_roles({name: whole[name] for name in main}))
    if len(main) == 2:
        first, second = main
        _complete(roles, first, second)
        _complete(roles, second, first)
    return roles


def _complete(roles: dict[str, Role], known: str, other: str) -> None:
    opposite = {Role.agent: Role.customer, Role.customer: Role.agent}
    if roles[other] is Role.unknown and roles[known] in opposite:
        roles[other] = opposite[roles[known]]
    elif roles[other] is Role.unknown and roles[known] is Role.bot:
        roles[other] = Role.customer


def _main_speakers(whole: Mapping[str, str]) -> list[str]:
    counts = {name: len(text.split()) for name, text in whole.items()}
    total = sum(counts.values()) or 1
    return [name for name, n in counts.items() if n / total >= _MAIN_SHARE]


def _voices(said: Mapping[str, Sequence[str]], whole: Mapping[str, str]) -> list[str]:
    """Speakers who take a real part: a few turns or a fair share of the words. More
    than two is a meeting or a conference, whatever the channel says."""
    main = set(_main_speakers(whole))
    return [name for name, turns in said.items() if name in main or len(turns) >= _VOICE_TURNS]
