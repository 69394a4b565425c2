"""Small, dependency-free functions the example workflows call from ``code`` nodes."""

from __future__ import annotations

import re
from typing import Any

_POSITIVE = {"great", "love", "excellent", "fast", "happy", "perfect", "thanks", "good", "works"}
_NEGATIVE = {
    "broken",
    "slow",
    "refund",
    "angry",
    "crash",
    "bad",
    "late",
    "never",
    "worst",
    "cancel",
    "missing",
    "error",
}
_WORD = re.compile(r"[a-z']+")


def text_stats(text: str) -> dict[str, Any]:
    """Word, sentence and exclamation counts of ``text``."""
    words = _WORD.findall(text.lower())
    sentences = [s for s in re.split(r"[.!?]+", text) if s.strip()]
    return {
        "words": len(words),
        "sentences": len(sentences),
        "exclamations": text.count("!"),
        "chars": len(text),
    }


def sentiment(text: str) -> dict[str, Any]:
    """A lexicon sentiment score in [-1, 1] with the words that decided it."""
    words = _WORD.findall(text.lower())
    pos = [w for w in words if w in _POSITIVE]
    neg = [w for w in words if w in _NEGATIVE]
    total = len(pos) + len(neg)
    score = 0.0 if total == 0 else round((len(pos) - len(neg)) / total, 3)
    label = "negative" if score < -0.2 else "positive" if score > 0.2 else "neutral"
    return {"score": score, "label": label, "positive": pos, "negative": neg}


def priority(score: float, exclamations: int, tier: str) -> str:
    """Ticket priority from sentiment, shouting and the customer's tier."""
    points = (2 if score < -0.5 else 1 if score < 0 else 0) + min(exclamations, 2)
    points += 2 if tier == "enterprise" else 1 if tier == "pro" else 0
    return "urgent" if points >= 4 else "high" if points >= 2 else "normal"


def order_lines(items: list[dict[str, Any]], tax_rate: float) -> dict[str, Any]:
    """Price each order line and total the order."""
    lines = []
    for item in items:
        amount = round(float(item["price"]) * int(item.get("quantity", 1)), 2)
        lines.append({**item, "amount": amount})
    subtotal = round(sum(line["amount"] for line in lines), 2)
    tax = round(subtotal * tax_rate, 2)
    return {"lines": lines, "subtotal": subtotal, "tax": tax, "total": round(subtotal + tax, 2)}


def assess_expense(amount: float, category: str, policy: dict[str, Any]) -> dict[str, Any]:
    """Check an expense against a policy ``{"limits": {category: max}, "auto_approve_below"}``."""
    limit = policy.get("limits", {}).get(category)
    auto_below = float(policy.get("auto_approve_below", 0))
    if limit is None:
        return {
            "needs_approval": True,
            "within_limit": False,
            "reason": f"no policy limit for category {category!r}",
        }
    within = amount <= float(limit)
    return {
        "needs_approval": not within or amount >= auto_below,
        "within_limit": within,
        "reason": f"{amount:.2f} of a {float(limit):.2f} limit for {category}",
    }


BOOKINGS: list[dict[str, Any]] = []


def book_expense(employee: str, amount: float, category: str) -> dict[str, Any]:
    """Book a reimbursement (a side effect: it appends to ``BOOKINGS``)."""
    booking = {
        "id": f"EXP-{len(BOOKINGS) + 1:04d}",
        "employee": employee,
        "amount": amount,
        "category": category,
    }
    BOOKINGS.append(booking)
    return booking
