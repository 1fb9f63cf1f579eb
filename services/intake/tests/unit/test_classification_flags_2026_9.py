"""Risk flags by rules default-2026.9 (tenth helper, issue 11; evaluation/README.md, "Dev batches
05–06 and rules 2026.9"): risks told by two words together (risk pairs), their negation and
scope, refusals as negation cues, "and"/"but" ending a negation, alarms and warnings as named
things, hearsay questions, the model kept out of hearsay and hypotheticals, and English typos of
risk words. Cases of our own, not corpus texts."""

import pytest
from pydantic import ValidationError
from tousu_intake.domain.classification import (
    Classifier,
    ClassifierRules,
    ComplaintFacts,
    RiskFlag,
    Severity,
    load_default_rules,
)


@pytest.fixture(scope="module")
def rules_only() -> Classifier:
    return Classifier(model=None)


def flags(classifier: Classifier, text: str) -> tuple[RiskFlag, ...]:
    return classifier.classify(ComplaintFacts(description=text, channel="phone")).risk_flags


def test_the_rules_version_is_2026_9():
    assert load_default_rules().version == "default-2026.9"


# Harm or danger told without a harm word: two words together say it.
@pytest.mark.parametrize(
    "text",
    [
        "服务员端锅的时候没拿稳,热汤差一点就泼在我女儿身上",  # a near miss
        "The waiter tripped and the pot of tea nearly scalded my baby.",
        "商场送的小玩具零件很小,我家宝宝已经把一个塞进嘴里了",  # a small thing in a child's mouth
        "The bead bracelet broke and my toddler put a bead in his mouth.",
        "代驾一边开车一边刷抖音,好几次差点追上前车",  # a driver not watching the road
        "The coach driver kept scrolling on his phone on the motorway.",
        "写字楼的电梯突然停了,我们六个人被关在里面一个小时",  # people shut in a lift
        "The lift stopped between floors and we were trapped for an hour.",
        "药房配的药剂量大了一倍,老人差点照着吃了",  # a wrong dose
        "The chemist gave my dad pills at double the dose the GP wrote.",
        # water and nobody watching
        "托管班的院子里有个鱼池,好几个孩子在池边玩,一个老师都没有,没人看着",
        "At the holiday club the children were at the pool unsupervised for twenty minutes.",
        "小区配电箱的门坏了,里面的线裸露着,就在儿童游乐区旁边",  # live electrics left open
        "The wall socket you fitted gave my son a shock when he plugged in his lamp.",
        "我说了孩子花生过敏,送来的蛋糕还是撒了花生碎",  # an allergen after a warning
    ],
)
def test_a_risk_told_by_two_words_together_is_safety(rules_only, text):
    assert RiskFlag.SAFETY in flags(rules_only, text)


def test_a_pair_names_itself_in_the_explanation(rules_only):
    result = rules_only.classify(
        ComplaintFacts(description="司机开车全程看手机,我一路都很害怕", channel="app")
    )
    matched = result.explanation["risk_flags"]["matched"]["safety"]
    assert any(m.startswith("a driver not watching the road:") for m in matched)
    assert result.severity in (Severity.SERIOUS, Severity.MAJOR)


@pytest.mark.parametrize(
    ("text", "flag"),
    [
        ("店员把我的手机号给了卖家,现在天天有人打电话来", RiskFlag.DATA_LEAK),
        ("The gym gave my phone number to a stranger who then texted me.", RiskFlag.DATA_LEAK),
        ("体检中心的前台大声念我的检查结果,整个大厅都听见了", RiskFlag.DATA_LEAK),
        ("The receptionist shouted my diagnosis across the waiting room.", RiskFlag.DATA_LEAK),
        ("打电话的人连我上个月买了什么都知道,我只在你们店买过", RiskFlag.DATA_LEAK),
        ("The caller knew my account number and my home address.", RiskFlag.DATA_LEAK),
        ("快递面单上写着药品名,整个驿站都看得到", RiskFlag.DATA_LEAK),
        ("房东收了我三千押金以后就把我拉黑了", RiskFlag.FRAUD),
        ("I paid the deposit and then the landlord vanished.", RiskFlag.FRAUD),
        ("这个所谓的正品包包,拿去专柜鉴定说不是他们家的货", RiskFlag.FRAUD),
        (
            "There were three charges abroad while my card was in my wallet the whole time.",
            RiskFlag.FRAUD,
        ),
        (
            "A woman phoned me and asked for the verification code you had just sent.",
            RiskFlag.FRAUD,
        ),
        ("有人拿我的身份证在别的城市补办了我的手机卡", RiskFlag.FRAUD),
        ("你们再不处理,视频今晚就发出去", RiskFlag.MEDIA),
    ],
)
def test_a_leak_a_scam_or_a_threat_told_by_two_words(rules_only, text, flag):
    assert flag in flags(rules_only, text)


@pytest.mark.parametrize(
    "text",
    [
        "客服说他们没有把我的手机号给卖家,是卖家自己从快递单上看到的地址",  # negated
        "打电话的人说不出我的订单号,只知道我的名字",  # the detail negated: a name only
        "如果司机开车看手机出了事,你们平台负责吗?",  # a hypothetical
        "卖家联系不上,货到现在还没发",  # vanished, but no money said: the rules do not guess
        "司机开车很稳。看手机导航的是我,不是他",  # two sentences: no pair
        "I called your agent and asked for my verification code to be resent.",  # no caller
    ],
)
def test_a_pair_negated_hypothetical_or_apart_sets_no_flag(rules_only, text):
    assert flags(rules_only, text) == ()


@pytest.mark.parametrize(
    "text",
    [
        "司机打电话说到了楼下,我下去拿的时候他已经走了",
        "修空调的师傅一直在玩手机,活干得很马虎",  # not a driver
        "I drove to your store and was texting your agent the whole way because nobody answered.",
        "用我的手机号在网上查不到订单",
        "办卡需要身份证,他人代办要什么材料?",
        "在第三方平台上填了我的信息,优惠券还是没到账",
        "The price of the kettle came as a shock.",
        "网上拿的药和店里的价格不一样",
        "泳池一个人收费50,太贵了",
        "The gluten free bread still came late.",
        "客服知道我的订单号,但就是查不到物流",  # the company's own agent
        "在你们网站付了款,客服电话一直打不通",  # the company's own line: slow, not a scam
        "店铺关了门,我白跑一趟,付了停车费",
        "所谓的客服态度这么差",  # sarcasm about real staff
        "你们打电话给我说验证码发不出来,让我重新注册",
        "The app asked me to reset my password every week.",
        "My card was in my wallet when I paid at the till and the machine declined it.",
        "The nurse called out my name and then kept me waiting.",
        "我把视频发出去给客服看了,他们说是人为损坏",
        "你们公众号上写的联系方式是错的,打过去是空号",  # data and a place, nothing passed on
        "推销电话太多了,能不能把我的手机号从你们的营销名单里去掉",
        "广告里说姓名登记就能领礼品,去了说活动结束了",
        "Please update my address across the account, it still shows the old one.",
        "孩子把饭菜塞进嘴里以后说太咸了",  # food, not a small object
        "The driver was texting me to say he was outside, then left before I got down.",
        "The pharmacist said the dose on the box was wrong and corrected it for me.",
        "I paid for the listing upgrade and the listing is gone from search results.",
        "所谓的专员其实就是普通客服,解决不了问题",
        "有人说你们是以我的名义开的会员,我怎么不知道?",  # hearsay
        "The video of the concert goes up on your site next week, can I get a copy?",
        "钱包App转账失败,钱扣了对方没收到,客服打不通",
    ],
)
def test_look_alikes_of_a_pair_set_no_flag(rules_only, text):
    assert flags(rules_only, text) == ()


def test_a_pair_requires_its_words_and_a_payment_word_when_asked():
    data = load_default_rules().model_dump(mode="json")
    kinds = {pair["kind"] for pair in data["risk_pairs"]}
    assert "paid, then the other side vanished" in kinds
    data["risk_pairs"] = [
        p for p in data["risk_pairs"] if p["kind"] != "paid, then the other side vanished"
    ]
    without = Classifier(ClassifierRules.model_validate(data), model=None)
    assert RiskFlag.FRAUD not in flags(without, "房东收了我三千押金以后就把我拉黑了")
    empty_side = {"flag": "fraud", "kind": "empty", "first": {"zh": ["卖家"]}, "second": {}}
    data["risk_pairs"] = [empty_side]
    with pytest.raises(ValidationError):
        ClassifierRules.model_validate(data)


# Negation: refusals as cues, and "and"/"but"/但是 end a negation's reach.
@pytest.mark.parametrize(
    "text",
    [
        "懒得跟你们打官司,就把钱退了吧",
        "我不愿意去法院,只想尽快换货",
    ],
)
def test_a_refusal_sets_no_threat(rules_only, text):
    assert flags(rules_only, text) == ()


@pytest.mark.parametrize(
    ("text", "flag"),
    [
        ("I have never met him and he knew my date of birth and my sort code.", RiskFlag.DATA_LEAK),
        ("We did not complain at first but my son was scalded by the tap.", RiskFlag.SAFETY),
        ("I don't usually complain and my daughter got food poisoning.", RiskFlag.SAFETY),
    ],
)
def test_and_or_but_ends_a_negations_reach(rules_only, text, flag):
    assert flag in flags(rules_only, text)


@pytest.mark.parametrize(
    "text",
    [
        "The smoke alarm in the rental flat beeps every night.",
        "Can you switch off the fraud alerts on my joint account?",
        "Your email said to beware of fake couriers, does that apply to parcels from abroad?",
        "Is it safe to use the app on public wifi? Just asking.",
    ],
)
def test_alarms_alerts_warnings_and_safety_enquiries_are_no_event(rules_only, text):
    assert flags(rules_only, text) == ()


def test_an_enquiry_about_safety_with_a_danger_keeps_the_flag(rules_only):
    assert RiskFlag.SAFETY in flags(
        rules_only, "The tap water is brown again. Is it safe to drink?"
    )


# Hearsay told as a question: the whole sentence tells of no event.
@pytest.mark.parametrize(
    "text",
    [
        "听说你们家的热水器用久了会漏电,家里老人洗澡会触电,是真的吗?",
        "Someone in the group chat reckons, your heaters catch fire, is that true?",
    ],
)
def test_a_hearsay_question_sets_no_event_flag(rules_only, text):
    result = rules_only.classify(ComplaintFacts(description=text, channel="phone"))
    assert result.risk_flags == ()
    assert result.explanation["risk_flags"]["hearsay_only"] == ["safety"]


@pytest.mark.parametrize(
    "text",
    [
        # The question without hearsay: the customer's own event.
        "孩子用了你们的热水器被电到了,客服说这很正常,是真的吗?",
        # The hearsay question in one sentence, the event in the next.
        "听说你们的热水器会漏电,是真的吗?我家昨天就被电到了。",
    ],
)
def test_a_question_without_hearsay_or_an_event_outside_it_keeps_the_flag(rules_only, text):
    assert RiskFlag.SAFETY in flags(rules_only, text)


def test_the_model_adds_no_event_flag_to_a_hypothetical_or_hearsay_text():
    # The model cannot tell a cue's scope, so in such a text the words decide (policy data).
    rules = load_default_rules()
    assert rules.risk_model_not_after_cue is True
    eager = rules.model_copy(update={"risk_model_min_probability": 0.51})
    free = eager.model_copy(update={"risk_model_not_after_cue": False})
    texts = [
        "听说你们的外卖吃了以后孩子上吐下泻,是不是真的",
        "朋友说你们的电动车充电的时候会冒烟起火,想问问",
        "如果你们的客服打电话让我转账到安全账户,我该怎么办",
        "My neighbour reckons your chicken made his whole family sick last week.",
    ]
    added_free: set[str] = set()
    for text in texts:
        facts = ComplaintFacts(description=text, channel="phone")
        kept = Classifier(eager).classify(facts).explanation["risk_flags"].get("model", {})
        assert not set(kept) & {"safety", "fraud", "data_leak"}
        added_free |= set(
            Classifier(free).classify(facts).explanation["risk_flags"].get("model", {})
        )
    # Without the policy the same model adds some event flag to these texts.
    assert added_free & {"safety", "fraud", "data_leak"}


# English typos of risk words: one letter missing, doubled or swapped inside a long word.
@pytest.mark.parametrize(
    ("text", "flag"),
    [
        ("The chicken wrap gave my husband food poisning.", RiskFlag.SAFETY),
        ("That loose cable is really dangrous for the kids.", RiskFlag.SAFETY),
        ("I clicked a phising link that looked like your login page.", RiskFlag.FRAUD),
        ("My atorney will be writing to you this week.", RiskFlag.LEGAL),
    ],
)
def test_a_typo_of_a_long_risk_word_still_counts(rules_only, text, flag):
    assert flag in flags(rules_only, text)


@pytest.mark.parametrize(
    "text",
    [
        "The new policy on returns is confusing.",  # policy is no typo of police
        "Your staff were polite and the posion of the shelf was fine.",  # six letters: too short
    ],
)
def test_a_short_or_different_word_is_no_typo(rules_only, text):
    assert flags(rules_only, text) == ()


def test_typo_tolerance_is_policy_data():
    data = load_default_rules().model_dump(mode="json")
    assert data["typo_min_length"] == 7
    data["typo_min_length"] = None
    strict = Classifier(ClassifierRules.model_validate(data), model=None)
    assert RiskFlag.SAFETY not in flags(strict, "The chicken wrap gave my husband food poisning.")
    data["typo_min_length"] = 3
    with pytest.raises(ValidationError):
        ClassifierRules.model_validate(data)
