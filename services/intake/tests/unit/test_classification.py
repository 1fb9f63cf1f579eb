"""Unit tests of the classifier's rules (domain.md §2), run without the trained model.

The rules are the fallback when no model is loaded and always decide risk flags, harm,
amount and impact thresholds and tier; the model-backed behaviour is tested in
test_classification_model.py, the corpus in test_classification_corpus.py.
"""

import json
import re
from decimal import Decimal
from math import log

import pytest
from pydantic import ValidationError
from tousu_intake.domain.classification import (
    Category,
    Classifier,
    ClassifierRules,
    ComplaintFacts,
    Emotion,
    RiskFlag,
    Severity,
    Urgency,
    load_default_rules,
    without_customer_history,
)
from tousu_intake.domain.classification.corpus import load_split
from tousu_intake.domain.classification.text import _cut_chinese, _tokenizer

DIMENSIONS = ("category", "severity", "urgency", "risk_flags", "customer_tier", "impact", "emotion")
WANG = (
    "客户王先生在电商平台购买笔记本电脑,收货后发现屏幕有划痕且出现蓝屏问题,立即投诉要求退货退款。"
)
PLAIN_DELAY = "订单下单五天了还没发货,请帮忙催一下。"  # general, calm, no risk


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier(model=None)


def facts(description: str, **overrides) -> ComplaintFacts:
    return ComplaintFacts(
        description=description, channel=overrides.pop("channel", "phone"), **overrides
    )


def rules_with(**changes) -> ClassifierRules:
    """Default rules with some top-level or nested sections replaced, validated again."""
    data = load_default_rules().model_dump(mode="json")
    for dotted, value in changes.items():
        target = data
        *path, last = dotted.split("__")
        for key in path:
            target = target[key]
        target[last] = value
    return ClassifierRules.model_validate(data)


# --- the worked case (domain.md §7) ---------------------------------------------------------


def test_worked_case_mr_wang_is_serious_product_quality_with_priority(classifier):
    result = classifier.classify(
        facts(
            WANG,
            emotion="angry",
            requested_remedies=["return", "refund"],
            product_ref="laptop-123",
            amount=Decimal("6999"),
        )
    )
    assert result.category is Category.PRODUCT_QUALITY
    assert result.severity is Severity.SERIOUS
    assert result.urgency is Urgency.PRIORITY
    assert result.emotion is Emotion.ANGRY
    assert result.risk_flags == ()
    assert {"划痕", "蓝屏"} <= set(result.explanation["category"]["matched"]["product_quality"])
    # 2026 rubric: the laptop's price (≥ ¥5,000) makes it serious, and serious is priority.
    assert result.explanation["severity"]["steps"] == ["amount 6999 ≥ 5000 → at least serious"]
    assert result.explanation["urgency"]["rule"] == "severity serious → priority"


# --- urgency rules ----------------------------------------------------------------------------


def test_urgency_base_follows_severity(classifier):
    assert classifier.classify(facts(PLAIN_DELAY)).urgency is Urgency.ROUTINE
    minor = classifier.classify(facts("建议店员可以再热情一点。", channel="survey"))
    assert (minor.severity, minor.urgency) == (Severity.MINOR, Urgency.DEFERRED)
    serious = classifier.classify(facts(PLAIN_DELAY, amount=Decimal("5000")))
    assert (serious.severity, serious.urgency) == (Severity.SERIOUS, Urgency.PRIORITY)
    major = classifier.classify(facts(PLAIN_DELAY, amount=Decimal("150000")))
    assert (major.severity, major.urgency) == (Severity.MAJOR, Urgency.IMMEDIATE)


def test_any_risk_flag_forces_immediate(classifier):
    minor_survey = facts("建议改进。另外上次买的充电器有点冒烟。", channel="survey")
    result = classifier.classify(minor_survey)
    assert RiskFlag.SAFETY in result.risk_flags
    assert result.urgency is Urgency.IMMEDIATE
    assert any(
        step.startswith("risk flag safety") for step in result.explanation["urgency"]["steps"]
    )
    for text, flag in [
        ("再不处理我就找记者曝光", RiskFlag.MEDIA),
        ("我已经咨询律师,准备起诉", RiskFlag.LEGAL),
        ("卖假货,就是诈骗", RiskFlag.FRAUD),
        ("我的个人信息被泄露了", RiskFlag.DATA_LEAK),
        ("The charger caught fire last night", RiskFlag.SAFETY),
    ]:
        result = classifier.classify(facts(text))
        assert flag in result.risk_flags, text
        assert result.urgency is Urgency.IMMEDIATE, text


def test_vip_raises_urgency_one_step(classifier):
    regular = classifier.classify(facts(PLAIN_DELAY, customer_tier="regular"))
    vip = classifier.classify(facts(PLAIN_DELAY, customer_tier="vip"))
    assert (regular.urgency, vip.urgency) == (Urgency.ROUTINE, Urgency.PRIORITY)
    assert "vip → raise 1 (routine → priority)" in vip.explanation["urgency"]["steps"]
    deferred = facts("建议店员可以再热情一点。", channel="survey", customer_tier="vip")
    assert classifier.classify(deferred).urgency is Urgency.ROUTINE


def test_angry_and_serious_is_at_least_priority(classifier):
    # Under the 2026 rubric serious is priority anyway; the emotion floor stays as policy data
    # and still lifts when an operator lowers serious's base urgency.
    serious = "买的冰箱完全不制冷,里面的菜全坏了。"
    rules = rules_with(
        urgency__base_by_severity={
            "minor": "deferred",
            "general": "routine",
            "serious": "routine",
            "major": "immediate",
        }
    )
    lowered = Classifier(rules, model=None)
    calm = lowered.classify(facts(serious, emotion="calm", amount=Decimal("6000")))
    angry = lowered.classify(facts(serious, emotion="angry", amount=Decimal("6000")))
    assert calm.severity is Severity.SERIOUS and calm.urgency is Urgency.ROUTINE
    assert angry.urgency is Urgency.PRIORITY
    angry_general = lowered.classify(facts(PLAIN_DELAY, emotion="angry"))
    assert angry_general.urgency is Urgency.ROUTINE  # the floor needs serious or worse


def test_repeat_complainer_raises_urgency(classifier):
    once = classifier.classify(facts(PLAIN_DELAY, recent_complaints_by_customer=1))
    repeat = classifier.classify(facts(PLAIN_DELAY, recent_complaints_by_customer=2))
    assert (once.urgency, repeat.urgency) == (Urgency.ROUTINE, Urgency.PRIORITY)
    assert any("repeat complainer" in step for step in repeat.explanation["urgency"]["steps"])
    assert repeat.explanation["urgency"]["customer_history"] == {
        "recent_complaints": 2,
        "at_least": 2,
    }


def test_the_customer_history_can_be_left_out_of_an_explanation(classifier):
    repeat = classifier.classify(facts(PLAIN_DELAY, recent_complaints_by_customer=5))
    shown = without_customer_history(repeat.explanation)
    assert "customer_history" not in shown["urgency"]
    # Nothing else of the explanation changes, and no step still carries the count.
    assert {k: v for k, v in shown.items() if k != "urgency"} == {
        k: v for k, v in repeat.explanation.items() if k != "urgency"
    }
    assert not any("5" in step for step in shown["urgency"]["steps"])
    assert repeat.explanation["urgency"]["customer_history"]["recent_complaints"] == 5
    once = classifier.classify(facts(PLAIN_DELAY, recent_complaints_by_customer=0))
    assert without_customer_history(once.explanation) == once.explanation


def test_urgency_never_goes_past_immediate(classifier):
    result = classifier.classify(
        facts(
            "热水器漏电,我被电击受伤住院了",
            customer_tier="vip",
            emotion="angry",
            recent_complaints_by_customer=5,
        )
    )
    assert result.severity is Severity.MAJOR
    assert result.urgency is Urgency.IMMEDIATE


# --- severity rules ---------------------------------------------------------------------------


def test_large_amounts_raise_severity(classifier):
    assert classifier.classify(facts(PLAIN_DELAY)).severity is Severity.GENERAL
    # domain.md §2 (2026): under ¥50 minor, otherwise general, ¥5,000 serious, ¥100,000 major.
    expected = {
        "49.99": Severity.MINOR,
        "50": Severity.GENERAL,
        "4999.99": Severity.GENERAL,
        "5000": Severity.SERIOUS,
        "99999.99": Severity.SERIOUS,
        "100000": Severity.MAJOR,
    }
    for amount, level in expected.items():
        result = classifier.classify(facts(PLAIN_DELAY, amount=Decimal(amount)))
        assert result.severity is level, amount
    small = classifier.classify(facts(PLAIN_DELAY, amount=Decimal("30")))
    assert small.explanation["severity"]["source"] == "amount 30 < 50"
    big = classifier.classify(facts(PLAIN_DELAY, amount=Decimal("5000")))
    assert big.explanation["severity"]["steps"] == ["amount 5000 ≥ 5000 → at least serious"]


def test_wide_impact_raises_severity(classifier):
    # 100 or more affected raise one step; 10,000 or more make it major.
    by_affected = {
        1: Severity.GENERAL,
        99: Severity.GENERAL,
        100: Severity.SERIOUS,
        9999: Severity.SERIOUS,
        10000: Severity.MAJOR,
    }
    for affected, level in by_affected.items():
        result = classifier.classify(facts(PLAIN_DELAY, affected_customers=affected))
        assert result.severity is level, affected
    wide = classifier.classify(facts(PLAIN_DELAY, affected_customers=100))
    assert wide.impact == 100 and wide.explanation["impact"]["rule"] == "supplied"
    minor_wide = classifier.classify(
        facts("建议改进一下", amount=Decimal("10"), affected_customers=150)
    )
    assert minor_wide.severity is Severity.GENERAL  # one step up from minor
    from_text = classifier.classify(facts("整栋楼的快递都一个星期没送到了"))
    assert from_text.impact >= 100 and from_text.explanation["impact"]["rule"] == "impact_words"
    assert from_text.severity is Severity.SERIOUS


def test_risk_flags_set_a_severity_floor(classifier):
    # Danger to health → at least serious; actual harm → major; fraud/leak → at least general,
    # serious with a loss; a media threat is urgent, not by itself grave.
    danger = classifier.classify(facts("充电宝充电时冒烟了", amount=Decimal("30")))
    assert danger.severity is Severity.SERIOUS
    assert "risk flag safety → at least serious" in danger.explanation["severity"]["steps"]
    harm = classifier.classify(facts("吃了以后上吐下泻,去医院挂水"))
    assert harm.severity is Severity.MAJOR
    fraud = classifier.classify(facts("卖假货,骗子", amount=Decimal("20")))
    assert fraud.severity is Severity.GENERAL
    lost = classifier.classify(facts("有人冒充客服,我被骗了,转账三千"))
    assert lost.severity is Severity.SERIOUS
    assert any("with loss" in step for step in lost.explanation["severity"]["steps"])
    media_only = classifier.classify(facts("服务员态度冷淡,我要发微博曝光"))
    assert media_only.severity is Severity.GENERAL


def test_severity_words_without_the_model(classifier):
    # 2026 rubric: a broken product is general unless money, harm or impact make it more.
    assert classifier.classify(facts("手机开不了机,完全不能用")).severity is Severity.GENERAL
    assert classifier.classify(facts("孩子吃了以后住院了")).severity is Severity.MAJOR
    assert classifier.classify(facts("想问一下营业时间")).severity is Severity.MINOR
    assert classifier.classify(facts("没有人受伤,就是送货慢")).severity is Severity.GENERAL


# --- category, emotion, languages, negation --------------------------------------------------


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("收银员态度恶劣,还翻白眼", Category.SERVICE_ATTITUDE),
        ("刚买就降价了,申请价保被拒,要求退差价", Category.PRICE_DISPUTE),
        ("物流信息三天没更新,一直不发货", Category.DELIVERY_DELAY),
        ("空调报修一周了维修师傅还没上门", Category.AFTER_SALES),
        ("投诉了十天没有任何回复,工单一直待处理", Category.HANDLING_TIMELINESS),
        ("发票抬头写错了,请重新开具", Category.INFORMATION_ACCURACY),
        ("七天无理由退货却说拆封不能退,违反你们自己的规定", Category.POLICY_EXECUTION),
        ("商场停车场出口太少,每天排队", Category.OTHER),
        ("你好", Category.OTHER),
    ],
)
def test_chinese_categories(classifier, text, category):
    assert classifier.classify(facts(text)).category is category


def test_fallback_to_other_is_explained(classifier):
    why = classifier.classify(facts("你好")).explanation["category"]
    assert why["rule"] == "fallback" and why["scores"] == {}


@pytest.mark.parametrize(
    ("text", "category"),
    [
        (
            "The laptop arrived with a cracked screen and it keeps crashing to a blue screen.",
            Category.PRODUCT_QUALITY,
        ),
        ("The agent was rude, condescending and hung up on me.", Category.SERVICE_ATTITUDE),
        (
            "You charged me a hidden service fee and refused the price match.",
            Category.PRICE_DISPUTE,
        ),
        ("My parcel is two weeks late and tracking hasn't updated.", Category.DELIVERY_DELAY),
        ("I was charged twice and the invoice is wrong.", Category.INFORMATION_ACCURACY),
        ("Your return policy says 30 days but you refused my return.", Category.POLICY_EXECUTION),
    ],
)
def test_english_categories(classifier, text, category):
    assert classifier.classify(facts(text, channel="email")).category is category


def test_mixed_chinese_and_english(classifier):
    result = classifier.classify(
        facts("新买的iPhone屏幕有dead pixels,还会blue screen,气死了!", channel="app")
    )
    assert result.category is Category.PRODUCT_QUALITY
    assert result.severity is Severity.GENERAL  # no amount, no harm: general (2026 rubric)
    assert result.emotion is Emotion.ANGRY
    matched = result.explanation["category"]["matched"]["product_quality"]
    assert "屏幕" in matched and "blue screen" in matched


def test_english_prefix_terms_and_case(classifier):
    result = classifier.classify(facts("DEFECTIVE item. Totally FAULTY.", channel="email"))
    assert result.category is Category.PRODUCT_QUALITY
    assert "defect*" in result.explanation["category"]["matched"]["product_quality"]


def test_emotion_is_inferred_unless_supplied(classifier):
    assert classifier.classify(facts("气死我了,什么玩意!")).emotion is Emotion.ANGRY
    assert classifier.classify(facts("孩子明天要用,我很着急")).emotion is Emotion.ANXIOUS
    assert (
        classifier.classify(facts("一直很信任你们,这次真的很失望")).emotion is Emotion.DISAPPOINTED
    )
    assert classifier.classify(facts("请问发票怎么开")).emotion is Emotion.CALM
    supplied = classifier.classify(facts("气死我了!", emotion="calm"))
    assert (
        supplied.emotion is Emotion.CALM and supplied.explanation["emotion"]["rule"] == "supplied"
    )


def test_negation_cancels_risk_words(classifier):
    negated = classifier.classify(facts("我没有受伤,就是快递晚了三天"))
    assert negated.risk_flags == ()
    assert negated.explanation["risk_flags"]["negated"] == ["受伤"]
    assert (
        classifier.classify(
            facts("Nobody was hurt, but the parcel was late", channel="email")
        ).risk_flags
        == ()
    )
    assert classifier.classify(facts("我受伤了")).risk_flags == (RiskFlag.SAFETY,)


def test_keyword_needs_a_word_boundary_from_segmentation(classifier):
    # "售后" must not match inside 出售后 (出售 + 后): that is what segmentation is for.
    matched = classifier.classify(facts("商品出售后没有问题")).explanation["category"]["matched"]
    assert "售后" not in matched.get("after_sales", [])
    assert (
        "售后"
        in classifier.classify(facts("售后太差了")).explanation["category"]["matched"][
            "after_sales"
        ]
    )


def test_a_keyword_token_still_carries_another_dimensions_keyword_inside(classifier):
    # 被骗了 is one token and a loss word of severity; the fraud word 被骗 inside it counts too.
    scam = classifier.classify(facts("有人冒称快递理赔,我被骗了一千二"))
    assert RiskFlag.FRAUD in scam.risk_flags
    assert "被骗" in scam.explanation["risk_flags"]["matched"]["fraud"]
    assert scam.severity == Severity.SERIOUS  # fraud with money lost
    # Within its own dimension the whole token decides: a scam's 账户不安全 is no safety risk.
    words = classifier.classify(facts("对方说我的账户不安全,让我转钱"))
    assert words.risk_flags == (RiskFlag.FRAUD,)
    # ...and 态度 inside 服务态度 is not counted a second time.
    attitude = classifier.classify(facts("服务态度"))
    assert attitude.explanation["category"]["matched"]["service_attitude"] == ["服务态度"]


def test_segmentation_words_keep_risk_words_out_of_longer_words(classifier):
    # 媒体 inside 多媒体 (a classroom projector) is no press threat, 报警 inside 报警器 (a smoke
    # alarm) no police report; the bare words still set their flags.
    assert classifier.classify(facts("教室的多媒体设备坏了一周")).risk_flags == ()
    assert classifier.classify(facts("买的烟雾报警器一直误报")).risk_flags == ()
    assert RiskFlag.MEDIA in classifier.classify(facts("我要找媒体")).risk_flags
    assert RiskFlag.LEGAL in classifier.classify(facts("我已经报警了")).risk_flags


@pytest.mark.parametrize(
    "text",
    [
        "请问周末能不能办理住院",
        "住院费用的理赔材料交了一个月",
        "你们拒赔我的住院理赔",
        "住院押金还没退",
    ],
)
def test_hospital_admin_words_are_no_harm(classifier, text):
    # 住院 (hospitalised) is harm, but in a claim, a fee, a deposit or an admission enquiry it
    # names paperwork: no safety flag and no "major" from the harm word.
    result = classifier.classify(facts(text))
    assert RiskFlag.SAFETY not in result.risk_flags
    assert result.severity is not Severity.MAJOR


def test_hospitalised_after_harm_is_still_major(classifier):
    result = classifier.classify(facts("孩子喝了你们的奶粉拉肚子住院了"))
    assert RiskFlag.SAFETY in result.risk_flags and result.severity is Severity.MAJOR


@pytest.mark.parametrize(
    ("text", "flag"),
    [
        ("吃完药没多久我爸就晕过去了", RiskFlag.SAFETY),
        ("胳膊上起水泡了", RiskFlag.SAFETY),
        ("厨房里一股臭鸡蛋味", RiskFlag.SAFETY),
        ("My wife felt dizzy after cooking on the new hob.", RiskFlag.SAFETY),
        ("对方让我下载软件共享屏幕", RiskFlag.FRAUD),
        ("有人拿着假身份证补办了我的卡", RiskFlag.FRAUD),
        ("A stranger called quoting my order number.", RiskFlag.DATA_LEAK),
        ("这笔钱你们不退,咱们法庭上见", RiskFlag.LEGAL),
        ("我已经把经过写成长文发到了网上", RiskFlag.MEDIA),
        ("I will refer this to the consumer programme on local TV.", RiskFlag.MEDIA),
    ],
)
def test_risk_words_of_everyday_accounts(classifier, text, flag):
    assert flag in classifier.classify(facts(text)).risk_flags


@pytest.mark.parametrize(
    "text",
    [
        "房子被水泡了一个月,理赔还没下来",  # 水泡 of 被水泡了 is flooding, not a blister
        "茶是温的,没烫着,只是杯子太小",  # 没烫着: the harm word is negated
        "Your bill charges me for calls I never made.",  # a billing error, not card fraud
    ],
)
def test_everyday_risk_words_do_not_fire_on_their_look_alikes(classifier, text):
    assert classifier.classify(facts(text)).risk_flags == (), text


def test_fused_segmentation_equals_jieba(classifier):
    tokenizer = _tokenizer()
    runs = [
        run
        for item in load_split("train") + load_split("test")
        for run in re.findall(r"[\u4e00-\u9fff]+", item.facts.description)
    ]
    runs.append("他说的确实在理结婚的和尚未结婚的")
    for run in runs:
        assert _cut_chinese(run, tokenizer.FREQ, log(tokenizer.total)) == list(
            tokenizer.cut(run, HMM=False)
        ), run


# --- explanation and output -------------------------------------------------------------------


def test_every_dimension_is_explained_and_json_serialisable(classifier):
    result = classifier.classify(
        facts(WANG, amount=Decimal("5999"), customer_tier="vip", affected_customers=3)
    )
    assert set(result.explanation) == {*DIMENSIONS, "review"}
    for dimension in DIMENSIONS:
        assert result.explanation[dimension], dimension
    dumped = json.loads(json.dumps(result.model_dump(mode="json"), ensure_ascii=False))
    assert dumped["category"] == "product_quality"
    assert dumped["ruleset_version"] == load_default_rules().version
    assert dumped["explanation"]["customer_tier"] == {"rule": "supplied", "value": "vip"}


def test_classify_is_deterministic(classifier):
    first = classifier.classify(facts(WANG)).model_dump()
    assert all(classifier.classify(facts(WANG)).model_dump() == first for _ in range(3))


# --- rules as data ----------------------------------------------------------------------------


def test_default_rules_round_trip_through_json():
    rules = load_default_rules()
    again = ClassifierRules.model_validate_json(rules.model_dump_json())
    assert again == rules and again.fingerprint() == rules.fingerprint()
    from_dict = ClassifierRules.model_validate(json.loads(rules.model_dump_json()))
    assert from_dict == rules


def test_rules_hold_the_domain_numbers():
    rules = load_default_rules()
    assert rules.urgency.risk_flag_forces is Urgency.IMMEDIATE
    assert rules.urgency.vip_raise_steps == 1
    floor = rules.urgency.emotion_floors[0]
    assert (floor.emotion, floor.min_severity, floor.at_least) == (
        Emotion.ANGRY,
        Severity.SERIOUS,
        Urgency.PRIORITY,
    )
    # domain.md §2, 2026 rubric.
    assert rules.severity.minor_below_amount == Decimal("50")
    assert [(f.min_amount, f.at_least) for f in rules.severity.amount_floors] == [
        (Decimal("5000"), Severity.SERIOUS),
        (Decimal("100000"), Severity.MAJOR),
    ]
    assert [(r.min_affected, r.steps) for r in rules.severity.impact_raises] == [(100, 1)]
    assert [(f.min_affected, f.at_least) for f in rules.severity.impact_floors] == [
        (10000, Severity.MAJOR)
    ]
    assert rules.severity.risk_flag_floor == {
        RiskFlag.SAFETY: Severity.SERIOUS,
        RiskFlag.FRAUD: Severity.GENERAL,
        RiskFlag.DATA_LEAK: Severity.GENERAL,
    }
    assert rules.severity.loss_floor is not None
    assert rules.severity.loss_floor.at_least is Severity.SERIOUS
    assert rules.urgency.base_by_severity == {
        Severity.MINOR: Urgency.DEFERRED,
        Severity.GENERAL: Urgency.ROUTINE,
        Severity.SERIOUS: Urgency.PRIORITY,
        Severity.MAJOR: Urgency.IMMEDIATE,
    }


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"categories__price_dispute": {"zh": {}, "en": {}}}, "empty keyword set"),
        ({"categories__refund_fraud": {"zh": {"退款": 1}}}, "categories"),
        ({"category_tie_break": ["product_quality", "other"]}, "tie_break"),
        ({"categories__product_quality": {"zh": {"quality": 1}}}, "Chinese characters"),
        ({"categories__product_quality": {"en": {"stopped work*": 1}}}, "single word"),
        ({"categories__product_quality": {"en": {"broken": -1}}}, "positive"),
        ({"risk_words__safety": {"zh": [], "en": []}}, "empty word set"),
        ({"risk_words__bribery": {"zh": ["贿赂"]}}, "risk_words"),
        (
            {
                "severity__amount_floors": [
                    {"min_amount": "5000", "at_least": "serious"},
                    {"min_amount": "1000", "at_least": "general"},
                ]
            },
            "ascending",
        ),
        ({"urgency__base_by_severity": {"minor": "deferred"}}, "misses"),
        (
            {
                "urgency__base_by_severity": {
                    "minor": "soon",
                    "general": "routine",
                    "serious": "routine",
                    "major": "immediate",
                }
            },
            "base_by_severity",
        ),
        ({"surprise": True}, "surprise"),
    ],
)
def test_nonsense_rules_are_rejected(changes, message):
    with pytest.raises(ValidationError, match=message):
        rules_with(**changes)


def test_missing_category_is_rejected():
    data = load_default_rules().model_dump(mode="json")
    del data["categories"]["after_sales"]
    with pytest.raises(ValidationError, match="categories without keywords"):
        ClassifierRules.model_validate(data)


def test_operator_rules_change_behaviour():
    stricter = rules_with(
        version="ops-2",
        urgency__base_by_severity={
            "minor": "routine",
            "general": "priority",
            "serious": "priority",
            "major": "immediate",
        },
        remedy_weights={"repair": {"after_sales": 5}},
    )
    custom = Classifier(stricter, model=None)
    result = custom.classify(facts("东西有点问题", requested_remedies=["repair"]))
    assert result.ruleset_version == "ops-2"
    assert result.category is Category.AFTER_SALES
    assert result.explanation["category"]["remedies"] == ["repair → after_sales +5"]
    assert custom.classify(facts(PLAIN_DELAY)).urgency is Urgency.PRIORITY


def test_new_chinese_keyword_is_segmented_as_one_word():
    rules = rules_with(categories__other={"zh": {"共享充电线": 3}, "en": {}})
    result = Classifier(rules, model=None).classify(facts("店里的共享充电线总是不够用"))
    assert result.category is Category.OTHER
    assert result.explanation["category"]["matched"]["other"] == ["共享充电线"]
