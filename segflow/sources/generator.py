"""Seeded synthetic behavioral events with ground truth.

The generator writes what a real drop zone receives: one events file and one customers file per
*received* day under ``landing/``, in CSV, JSONL or Parquet. It models personas with distinct behavior,
anonymous devices that log in later (identity stitching), daytime and weekday rhythm, sessions separated
by inactivity, late-arriving and duplicated deliveries, malformed rows, and an optional behavior drift.

What a real source would never tell you is written separately under ``truth/`` for evaluation only:
each customer's persona and the injected drift / delivery faults.

Same config => byte-identical files. Each customer simulates from its own seeded stream; which persona a
customer gets depends on the total count (personas are dealt by share, then shuffled), so changing
``customers`` reassigns personas. Customers are simulated one at a time and their delivered rows streamed
straight into the day files (``generator_io``), so memory stays bounded however many events are asked for.
"""

from __future__ import annotations

import csv
import json
import math
import random
import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Literal

import numpy as np

from segflow import progress
from segflow.sources.generator_io import MALFORMED_KINDS as MALFORMED_KINDS  # re-exported
from segflow.sources.generator_io import DayFiles, Delivery, ts

EVENT_COLUMNS = (
    "event_id",
    "event_type",
    "occurred_at",
    "received_at",
    "anonymous_id",
    "user_id",
    "channel",
    "device_type",
    "page_url",
    "page_type",
    "scroll_depth",
    "time_on_page_s",
    "product_id",
    "category",
    "quantity",
    "price",
    "order_id",
    "payment_method",
    "feature_name",
    "ticket_id",
    "campaign_id",
)
CUSTOMER_COLUMNS = (
    "customer_id",
    "email",
    "signup_at",
    "country",
    "age_band",
    "consent_marketing",
    "consent_analytics",
)
Format = Literal["csv", "jsonl", "parquet"]


@dataclass(frozen=True)
class Persona:
    name: str
    share: float
    sessions_per_week: float
    pages_mean: float
    app_share: float
    cart_p: float
    purchase_p: float
    order_value: float
    email_open_p: float
    email_click_p: float
    tickets_per_week: float
    event_gap_s: float = 45.0
    # dormant customers are active only for the first weeks; new ones start late in the period
    active_weeks: int | None = None
    is_new: bool = False


PERSONAS: tuple[Persona, ...] = (
    Persona("power_user", 0.12, 7.0, 9.0, 0.65, 0.35, 0.20, 45.0, 0.50, 0.20, 0.05),
    Persona("loyal_high_spender", 0.14, 2.5, 6.0, 0.30, 0.60, 0.55, 220.0, 0.60, 0.25, 0.03),
    Persona("occasional_buyer", 0.26, 0.7, 4.0, 0.15, 0.35, 0.35, 55.0, 0.25, 0.04, 0.01),
    Persona("window_shopper", 0.20, 3.0, 11.0, 0.10, 0.60, 0.02, 60.0, 0.30, 0.10, 0.02),
    Persona("dormant", 0.16, 1.2, 4.0, 0.10, 0.25, 0.25, 60.0, 0.05, 0.005, 0.01, active_weeks=2),
    Persona("new_customer", 0.10, 3.0, 7.0, 0.30, 0.45, 0.25, 50.0, 0.45, 0.15, 0.02, is_new=True),
    Persona("bot", 0.02, 10.0, 45.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, event_gap_s=2.0),
)
PERSONA_BY_NAME = {p.name: p for p in PERSONAS}

CATEGORIES = ("electronics", "apparel", "home", "beauty", "sports", "books", "toys", "grocery")
CATEGORY_PRICE = {"electronics": 3.0, "apparel": 1.0, "home": 1.4, "beauty": 0.6, "sports": 1.2,
                  "books": 0.4, "toys": 0.7, "grocery": 0.3}
PAGE_TYPES = ("home", "category", "search", "content", "account")
DEVICE_TYPES = ("desktop", "mobile", "tablet")
# form factor of a customer's web devices (desktop, mobile, tablet weights) per persona; app devices are phones or
# tablets; a bot's headless browser is no device a person holds ("other")
WEB_DEVICE_WEIGHTS = {"power_user": (3, 6, 1), "loyal_high_spender": (5, 3, 2), "occasional_buyer": (5, 4, 1),
                      "window_shopper": (3, 6, 1), "dormant": (6, 3, 1), "new_customer": (3, 6, 1)}
APP_DEVICE_WEIGHTS = (0, 17, 3)
APP_FEATURES = ("wishlist", "search", "scan", "recommendations", "notifications")
PAYMENT_METHODS = ("card", "paypal", "apple_pay", "klarna")
COUNTRIES = ("DE", "FR", "GB", "US", "ES", "IT", "NL", "PL")
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
# daytime rhythm (UTC hour weights) and weekday rhythm (Mon..Sun)
HOUR_WEIGHTS = np.array([1, 0.6, 0.4, 0.3, 0.3, 0.5, 1, 2, 3, 3.5, 3.5, 4, 5, 5, 4, 3.5, 3.5, 4, 5, 6, 7, 6.5,
                         4.5, 2.5], dtype=float)
HOURS = tuple(range(24))
HOUR_CUM = tuple(np.cumsum(HOUR_WEIGHTS).tolist())
WEEKDAY_FACTOR = np.array([0.9, 0.95, 0.95, 1.0, 1.05, 1.2, 1.25])
WEEKDAY_MEAN = WEEKDAY_FACTOR.mean()


@dataclass(frozen=True)
class GeneratorConfig:
    customers: int = 2000
    start: date = date(2025, 9, 1)
    days: int = 63
    seed: int = 42
    drift_week: int | None = 8
    drift_persona: str = "loyal_high_spender"
    late_share: float = 0.01
    duplicate_share: float = 0.005
    malformed_share: float = 0.002
    broken_line_share: float = 0.0005
    format: Format = "csv"
    personas: tuple[str, ...] = field(default_factory=lambda: tuple(p.name for p in PERSONAS))

    def __post_init__(self) -> None:
        if self.customers < 1 or self.days < 1:
            raise ValueError("customers and days must be positive")
        if self.format not in ("csv", "jsonl", "parquet"):
            raise ValueError(f"format must be csv, jsonl or parquet, not {self.format!r}")
        if self.drift_persona not in PERSONA_BY_NAME:
            raise ValueError(f"unknown drift persona {self.drift_persona!r}; known: {sorted(PERSONA_BY_NAME)}")
        for share in (self.late_share, self.duplicate_share, self.malformed_share, self.broken_line_share):
            if not 0 <= share < 0.5:
                raise ValueError("fault shares must be in [0, 0.5)")

    @property
    def end(self) -> date:
        return self.start + timedelta(days=self.days)

    def drift_start(self) -> date | None:
        if self.drift_week is None:
            return None
        return self.start + timedelta(weeks=self.drift_week)


@dataclass
class GenerationReport:
    landing_dir: Path
    truth_dir: Path
    files: int
    customers: int
    events_generated: int
    events_delivered: int
    late_events: int
    duplicates: int
    malformed: dict[str, int]
    broken_lines: int
    undelivered: int

    def as_dict(self) -> dict:
        out = asdict(self)
        out["landing_dir"] = str(self.landing_dir)
        out["truth_dir"] = str(self.truth_dir)
        return out


class _CustomerSim:
    """Simulates one customer's events from its own random stream."""

    def __init__(self, cfg: GeneratorConfig, index: int, persona: Persona) -> None:
        self.cfg = cfg
        self.index = index
        self.persona = persona
        self.rng = random.Random(f"{cfg.seed}:{index}")
        self.customer_id = f"C{index + 1:06d}"
        self.counter = 0
        self.events: list[dict] = []
        rng = self.rng
        period_start = datetime.combine(cfg.start, datetime.min.time())
        if persona.is_new:
            offset = rng.uniform(max(cfg.days - 14, 0), cfg.days - 0.5) if cfg.days > 1 else 0.0
            self.signup_at = period_start + timedelta(days=float(offset))
        else:
            self.signup_at = period_start - timedelta(days=rng.uniform(60, 720))
        n_devices = 1 + (rng.random() < 0.35) + (rng.random() < 0.35)
        app_device = rng.random() < persona.app_share * 1.3
        # form factors come from a stream of their own, so adding them left every other draw unchanged
        device_rng = random.Random(f"{cfg.seed}:{index}:device")
        self.devices: list[dict] = []
        for d in range(n_devices):
            kind = "app" if (app_device and d == 0) else "web"
            self.devices.append({
                "anonymous_id": f"a-{rng.getrandbits(64):016x}",
                "kind": kind,
                "logged_in": kind == "app",
                "device_type": _device_type(device_rng, persona.name, kind),
            })
        self.profile = {
            "customer_id": self.customer_id,
            "email": f"customer{index + 1}@example.com",
            "signup_at": ts(self.signup_at),
            "country": rng.choice(COUNTRIES),
            "age_band": rng.choice(AGE_BANDS),
            "consent_marketing": "true" if rng.random() < 0.8 else "false",
            "consent_analytics": "true" if rng.random() < 0.97 else "false",
        }
        self.favorite_categories = rng.sample(CATEGORIES, 2)

    # -- helpers --------------------------------------------------------------------------------
    def _event_id(self) -> str:
        self.counter += 1
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _emit(self, event_type: str, at: datetime, channel: str, device: dict | None, **fields) -> None:
        # rows are sparse: absent keys are empty fields
        row = {"event_id": self._event_id(), "event_type": event_type, "occurred_at": at, "channel": channel}
        if device is not None:
            row["anonymous_id"] = device["anonymous_id"]
            row["device_type"] = device["device_type"]
        if device is None or device["logged_in"]:
            row["user_id"] = self.customer_id
        row.update(fields)
        self.events.append(row)

    def _params(self, day: date) -> Persona:
        p = self.persona
        drift_start = self.cfg.drift_start()
        if drift_start is not None and day >= drift_start and p.name == self.cfg.drift_persona:
            # the drifted persona visits less and buys less, cheaper
            p = replace(p, sessions_per_week=p.sessions_per_week * 0.4, purchase_p=p.purchase_p * 0.3,
                        order_value=p.order_value * 0.5, cart_p=p.cart_p * 0.6)
        return p

    def _product(self) -> tuple[str, str, float]:
        rng = self.rng
        category = rng.choice(self.favorite_categories) if rng.random() < 0.7 else rng.choice(CATEGORIES)
        product = f"P{rng.randrange(1, 5000):05d}"
        return product, category, CATEGORY_PRICE[category]

    # -- simulation -----------------------------------------------------------------------------
    def run(self) -> None:
        cfg = self.cfg
        rng = self.rng
        for day_offset in range(cfg.days):
            day = cfg.start + timedelta(days=day_offset)
            day_start = datetime.combine(day, datetime.min.time())
            if day_start + timedelta(days=1) <= self.signup_at:
                continue
            p = self._params(day)
            week = day_offset // 7
            rate = p.sessions_per_week
            if p.active_weeks is not None and week >= p.active_weeks:
                rate = 0.02
            expected = rate / 7.0 * WEEKDAY_FACTOR[day.weekday()] / WEEKDAY_MEAN
            for _ in range(_poisson(rng, expected)):
                hour = rng.choices(HOURS, cum_weights=HOUR_CUM)[0]
                start = day_start + timedelta(hours=hour, seconds=rng.uniform(0, 3600))
                if start < self.signup_at:
                    continue
                self._session(start, p)
            # weekly e-mail campaign on Tuesdays at 10:00 to marketing-consenting customers
            if day.weekday() == 1 and self.profile["consent_marketing"] == "true" and p.name != "bot":
                self._email(day_start + timedelta(hours=10, seconds=rng.uniform(0, 600)), week, p)
            if rng.random() < p.tickets_per_week / 7.0:
                at = day_start + timedelta(hours=rng.uniform(8, 18))
                if at >= self.signup_at:
                    self._emit("support_ticket", at, "support", None,
                               ticket_id=f"T{self.index:06d}{self.counter:05d}")

    def _email(self, at: datetime, week: int, p: Persona) -> None:
        rng = self.rng
        campaign = f"CMP{week + 1:03d}"
        self._emit("email_send", at, "email", None, campaign_id=campaign)
        if rng.random() < p.email_open_p:
            opened = at + timedelta(minutes=rng.expovariate(1 / 120))
            self._emit("email_open", opened, "email", None, campaign_id=campaign)
            if rng.random() < p.email_click_p / max(p.email_open_p, 1e-9):
                self._emit("email_click", opened + timedelta(seconds=rng.uniform(5, 120)), "email",
                           None, campaign_id=campaign)

    def _session(self, start: datetime, p: Persona) -> None:
        rng = self.rng
        device = rng.choice(self.devices)
        if device["kind"] == "app" or (rng.random() < p.app_share and any(d["kind"] == "app" for d in
                                                                           self.devices)):
            device = next((d for d in self.devices if d["kind"] == "app"), device)
        n_pages = 1 + _poisson(rng, max(p.pages_mean - 1, 0))
        will_cart = rng.random() < p.cart_p
        will_buy = will_cart and rng.random() < p.purchase_p / max(p.cart_p, 1e-9)
        login_at = n_pages  # index of the page at which a web device logs in (n_pages = never)
        if not device["logged_in"]:
            if will_buy or rng.random() < 0.6:
                login_at = rng.randrange(n_pages)
        t = start
        is_app = device["kind"] == "app"
        channel = "app" if is_app else "web"
        if is_app:
            self._emit("app_open", t, channel, device)
        cart: list[tuple[str, str, float, int]] = []
        for i in range(n_pages):
            gap = min(rng.expovariate(1 / p.event_gap_s), 900.0) + 1.0
            if i == login_at:
                device["logged_in"] = True
            if is_app and rng.random() < 0.3:
                self._emit("feature_use", t, channel, device, feature_name=rng.choice(APP_FEATURES))
            elif rng.random() < 0.45 or p.name == "bot":
                page_type = rng.choice(PAGE_TYPES)
                self._emit("page_view", t, channel, device, page_url=f"https://shop.example.com/{page_type}",
                           page_type=page_type, scroll_depth=rng.randrange(5, 101),
                           time_on_page_s=round(gap, 1))
            else:
                product, category, scale = self._product()
                price = round(rng.lognormvariate(math.log(25 * scale), 0.5), 2)
                self._emit("product_view", t, channel, device, page_url=f"https://shop.example.com/p/{product}",
                           page_type="product", product_id=product, category=category, price=price,
                           scroll_depth=rng.randrange(5, 101), time_on_page_s=round(gap, 1))
                if will_cart and (len(cart) == 0 or rng.random() < 0.25):
                    t += timedelta(seconds=rng.uniform(3, 40))
                    qty = 1 + (rng.random() < 0.2) + (rng.random() < 0.2)
                    cart.append((product, category, price, qty))
                    self._emit("add_to_cart", t, channel, device, product_id=product, category=category,
                               quantity=qty, price=price)
                    if len(cart) > 1 and rng.random() < 0.15:
                        t += timedelta(seconds=rng.uniform(3, 30))
                        gone = cart.pop()
                        self._emit("remove_from_cart", t, channel, device, product_id=gone[0],
                                   category=gone[1], quantity=gone[3], price=gone[2])
            t += timedelta(seconds=gap)
        if will_cart and not cart:
            product, category, scale = self._product()
            price = round(rng.lognormvariate(math.log(25 * scale), 0.5), 2)
            cart.append((product, category, price, 1))
            self._emit("add_to_cart", t, channel, device, product_id=product, category=category, quantity=1,
                       price=price)
        if will_buy and cart:
            device["logged_in"] = True
            # scale line prices so the order value follows the persona (plus noise)
            target = rng.lognormvariate(math.log(max(p.order_value, 1.0)), 0.35)
            raw_total = sum(price * qty for _, _, price, qty in cart)
            factor = target / raw_total if raw_total > 0 else 1.0
            t += timedelta(seconds=rng.uniform(10, 90))
            self._emit("checkout", t, channel, device)
            order_id = f"O{self.index + 1:06d}-{self.counter:05d}"
            method = rng.choice(PAYMENT_METHODS)
            t += timedelta(seconds=rng.uniform(20, 180))
            for product, category, price, qty in cart:
                self._emit("in_app_purchase" if is_app else "purchase", t, channel, device,
                           order_id=order_id, product_id=product, category=category, quantity=qty,
                           price=round(price * factor, 2), payment_method=method)


def _device_type(rng: random.Random, persona: str, kind: str) -> str:
    if persona == "bot":
        return "other"
    weights = APP_DEVICE_WEIGHTS if kind == "app" else WEB_DEVICE_WEIGHTS.get(persona, (5, 4, 1))
    return rng.choices(DEVICE_TYPES, weights=weights)[0]


def _poisson(rng: random.Random, lam: float) -> int:
    """Poisson draw (Knuth for small means, rounded normal above 30)."""
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, prod = math.exp(-lam), 0, rng.random()
    while prod > limit:
        k += 1
        prod *= rng.random()
    return k


def _assign_personas(cfg: GeneratorConfig) -> list[Persona]:
    chosen = [PERSONA_BY_NAME[n] for n in cfg.personas]
    shares = np.array([p.share for p in chosen])
    counts = np.floor(shares / shares.sum() * cfg.customers).astype(int)
    counts[np.argmax(shares)] += cfg.customers - counts.sum()
    assigned = [p for p, c in zip(chosen, counts, strict=True) for _ in range(c)]
    order = np.random.default_rng([cfg.seed, 10**9]).permutation(len(assigned))
    return [assigned[i] for i in order]


def generate(cfg: GeneratorConfig, landing_dir: Path, truth_dir: Path) -> GenerationReport:
    """Write landing files and ground truth for ``cfg``; returns what was written.

    Customers are simulated one at a time and each delivered row goes straight into the file of the day
    it is received, so memory stays bounded however many events the config asks for.
    """
    landing_dir = Path(landing_dir)
    truth_dir = Path(truth_dir)
    (landing_dir / "events").mkdir(parents=True, exist_ok=True)
    (landing_dir / "customers").mkdir(parents=True, exist_ok=True)
    truth_dir.mkdir(parents=True, exist_ok=True)

    personas = _assign_personas(cfg)
    with (DayFiles(landing_dir / "events", "events", EVENT_COLUMNS, cfg.format) as events,
          DayFiles(landing_dir / "customers", "customers", CUSTOMER_COLUMNS, cfg.format) as customers,
          open(truth_dir / "personas.csv", "w", newline="") as truth_fh):
        delivery = Delivery(cfg, events)
        truth = csv.writer(truth_fh)
        truth.writerow(["customer_id", "persona", "is_bot", "signup_at"])
        for index, persona in enumerate(personas):
            sim = _CustomerSim(cfg, index, persona)
            sim.run()
            delivery.deliver(sim.events)
            customers.write(max(sim.signup_at.date(), cfg.start), sim.profile)
            truth.writerow([sim.customer_id, persona.name, persona.name == "bot", sim.profile["signup_at"]])
            del sim  # the customer's events are not kept beyond the customer
            progress.step("generate", index + 1, len(personas), "customers")
    report = GenerationReport(
        landing_dir=landing_dir, truth_dir=truth_dir, files=events.files + customers.files,
        customers=len(personas), events_generated=delivery.generated,
        events_delivered=delivery.generated - delivery.undelivered + delivery.duplicates,
        late_events=delivery.late, duplicates=delivery.duplicates,
        malformed=dict(sorted(delivery.malformed.items())), broken_lines=delivery.broken_lines,
        undelivered=delivery.undelivered,
    )
    meta = {
        "config": {k: (v.isoformat() if isinstance(v, date) else v) for k, v in asdict(cfg).items()},
        "drift": {"persona": cfg.drift_persona,
                  "starts": cfg.drift_start().isoformat() if cfg.drift_start() else None,
                  "change": "sessions x0.4, purchase probability x0.3, order value x0.5, cart x0.6"},
        "report": {k: v for k, v in report.as_dict().items() if k not in ("landing_dir", "truth_dir")},
    }
    (truth_dir / "generation.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return report
