"""Risk flags by the decisions of rules default-2026.5 (domain.md §2, evaluation/README.md):
12345 as a threat or as the service complained about, scammers who quote the company's data
or only a name, threats after a condition, device alarms, 住院 in paperwork, water that leaked,
near misses, and which flags the model may add; and the words of default-2026.6 (leaks, fakes and
harm told in other words). Cases of our own, not corpus texts."""

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


@pytest.mark.parametrize(
    "text",
    [
        "燃气费扣了两遍,三天内不退我就打12345投诉你们",
        "我已经投诉到12345了,你们看着办",
        "If this is not fixed by Monday I will call 12345 about your shop.",
    ],
)
def test_12345_threatened_against_a_company_is_media(rules_only, text):
    assert RiskFlag.MEDIA in flags(rules_only, text)


@pytest.mark.parametrize(
    "text",
    [
        "12345的话务员把我的事转错了部门",
        "打了四次12345,路口的红绿灯还是坏的",
        "已经报给12345一周了,井盖还没人修",  # the hotline as the channel, no threat
        "我打12345问过了,窗口说周六也能办",
    ],
)
def test_12345_as_the_service_or_the_channel_is_no_media(rules_only, text):
    assert RiskFlag.MEDIA not in flags(rules_only, text)


def test_12345_cue_must_be_in_the_same_clause(rules_only):
    # 就打 belongs to another clause: "…我就打了个电话。12345那边说…" threatens nothing.
    assert RiskFlag.MEDIA not in flags(rules_only, "我就打了个电话问问。12345那边说已经在处理")


@pytest.mark.parametrize(
    "text",
    [
        "冒充你们客服的人说出了我上周订的房型和入住日期,让我交押金",
        "A caller claiming to be your bank read out my card's last four digits and wanted a code.",
    ],
)
def test_a_scammer_quoting_details_only_the_company_held_is_fraud_and_a_leak(rules_only, text):
    assert {RiskFlag.FRAUD, RiskFlag.DATA_LEAK} <= set(flags(rules_only, text))


@pytest.mark.parametrize(
    "text",
    [
        "有人冒充你们客服打电话,知道我的名字,让我下载会议软件",
        "Someone pretending to be your support team knew my name and asked for my PIN.",
        "A scammer called me by name and said he was from your insurance team.",
    ],
)
def test_a_scammer_who_only_knows_the_name_is_fraud_without_a_leak(rules_only, text):
    found = flags(rules_only, text)
    assert RiskFlag.FRAUD in found and RiskFlag.DATA_LEAK not in found


@pytest.mark.parametrize(
    ("text", "flag"),
    [
        ("再不处理就发抖音", RiskFlag.MEDIA),
        ("不给我退钱我就去法院起诉你们", RiskFlag.LEGAL),
        ("下周之前不赔,否则找律师", RiskFlag.LEGAL),
        ("If you don't refund me I will go to the press", RiskFlag.MEDIA),
    ],
)
def test_a_threat_after_a_negated_condition_still_counts(rules_only, text, flag):
    # The 不/don't belongs to the condition; 就/否则/"I will" starts the threat.
    assert flag in flags(rules_only, text)


@pytest.mark.parametrize(
    ("text", "flag"),
    [
        ("不知道有没有毒,孩子已经喝了两口", RiskFlag.SAFETY),
        ("我也不清楚是不是漏气,屋里一股煤气味", RiskFlag.SAFETY),
    ],
)
def test_not_knowing_is_no_denial(rules_only, text, flag):
    assert flag in flags(rules_only, text)


@pytest.mark.parametrize(
    ("text", "flag"),
    [
        ("没有人受伤,就是门把手掉了", RiskFlag.SAFETY),
        ("不是诈骗,是我自己记错了账户", RiskFlag.FRAUD),
        ("No one was hurt, the shelf just wobbles.", RiskFlag.SAFETY),
    ],
)
def test_plain_negation_still_cancels(rules_only, text, flag):
    assert flag not in flags(rules_only, text)


@pytest.mark.parametrize(
    "text",
    [
        "病房的监护仪报警了一整晚也没人来调",
        "净水器一直报警提示换滤芯",
        "冰箱门没关好就有报警声,这个设计挺好",
    ],
)
def test_a_device_alarm_is_no_police_report(rules_only, text):
    assert RiskFlag.LEGAL not in flags(rules_only, text)


def test_calling_the_police_is_still_legal(rules_only):
    assert RiskFlag.LEGAL in flags(rules_only, "手机在店里被偷了,我已经报警")


@pytest.mark.parametrize(
    "text",
    [
        "业务员说住院第一天就能报销,合同却写免赔三天",
        "我住院期间的护理费账单算错了",
        "我爸住院花了两万,理赔拖了四十天",
    ],
)
def test_hospital_stays_in_claims_and_bills_are_no_harm(rules_only, text):
    result = rules_only.classify(ComplaintFacts(description=text, channel="phone"))
    assert RiskFlag.SAFETY not in result.risk_flags
    assert result.severity is not Severity.MAJOR


@pytest.mark.parametrize(
    "text",
    [
        "吃完你们的外卖孩子上吐下泻住院了",
        "老人摔倒以后送医院缝了针",
        "The bath scalded my son and he was kept in hospital overnight.",
    ],
)
def test_harm_that_put_someone_in_hospital_is_safety_and_major(rules_only, text):
    result = rules_only.classify(ComplaintFacts(description=text, channel="phone"))
    assert RiskFlag.SAFETY in result.risk_flags
    assert result.severity is Severity.MAJOR


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("The washing machine leaked all over the floor.", False),
        ("The kettle leaked boiling water onto the counter.", False),
        ("My salary slips were leaked to my landlord by your staff.", True),
        ("Your branch leaked my address to a debt collector.", True),
    ],
)
def test_water_that_leaked_is_no_data_leak(rules_only, text, leak):
    assert (RiskFlag.DATA_LEAK in flags(rules_only, text)) is leak


@pytest.mark.parametrize(
    "text",
    [
        "货架上的纸箱掉下来,差点砸到我孩子",
        "跑步机突然加速,差点把我甩下来",
        "The lift doors closed on my daughter and nearly threw her over.",
    ],
)
def test_a_near_miss_is_a_danger(rules_only, text):
    assert RiskFlag.SAFETY in flags(rules_only, text)


def test_selling_counterfeits_is_fraud(rules_only):
    assert RiskFlag.FRAUD in flags(rules_only, "你们店卖假烟还不认账")


def test_the_model_adds_only_the_flags_the_policy_allows():
    # Legal and media are threats said in words; the model guessed them wrong every time it
    # added one in cross-validation, so the default policy lets it add safety, fraud and (since
    # 2026.8, on dev and CV evidence, never beside fraud) data_leak only. A low threshold makes
    # the model add whatever it leans to.
    text = "我已经把全部材料交给了消费者协会,等他们的结论"
    rules = load_default_rules()
    assert rules.risk_model_flags == [RiskFlag.SAFETY, RiskFlag.FRAUD, RiskFlag.DATA_LEAK]
    allowed = {"safety", "fraud", "data_leak"}
    eager = rules.model_copy(update={"risk_model_min_probability": 0.51})
    result = Classifier(eager).classify(ComplaintFacts(description=text, channel="phone"))
    added = set(result.explanation["risk_flags"].get("model", {}))
    assert added <= allowed
    anything = eager.model_copy(update={"risk_model_flags": None})
    unrestricted = Classifier(anything)
    for probe in (text, "我已经联系了律师", "我已经向消协投诉了"):
        result = unrestricted.classify(ComplaintFacts(description=probe, channel="phone"))
        added |= set(result.explanation["risk_flags"].get("model", {}))
    # Without the restriction the same model adds some flag the policy keeps out.
    assert added - allowed


def test_cued_words_are_policy_data():
    data = load_default_rules().model_dump(mode="json")
    data["cued_risk_words"] = []
    no_cues = Classifier(ClassifierRules.model_validate(data), model=None)
    assert RiskFlag.MEDIA not in flags(no_cues, "再不退钱我就打12345投诉你们")
    data["cued_risk_words"] = [{"flag": "media", "word": "12345", "cues": {"zh": []}}]
    with pytest.raises(ValidationError):
        ClassifierRules.model_validate(data)


# Rules default-2026.6 (seventh helper): words for what 5-fold CV on the training split missed.
@pytest.mark.parametrize(
    "text",
    [
        "修完电脑拿回来,发现相册被翻过,聊天记录也被人看了",
        "The repair shop had gone through my photos while the phone was with them.",
        "保洁阿姨把我家的快递单拍照发到了她们的工作群里",
        "骑手是从订单里看到我的手机号的,半夜给我发消息",
        "物业把业主的欠费名单连同我的手机号一起贴在电梯里",
        "My parcel's label with my name on it was left in the building next door.",
    ],
)
def test_personal_data_shown_or_passed_on_is_a_leak(rules_only, text):
    assert RiskFlag.DATA_LEAK in flags(rules_only, text)


@pytest.mark.parametrize(
    "text",
    [
        "二手平台的买家发了张假的付款截图,我差点就发货了",
        "短信链接打开的页面跟你们官网一模一样,让我填银行卡号",
        "An email in your colours asked me to confirm my bank details for a refund.",
        "The laptop was sold as new but the battery report shows 400 cycles.",
    ],
)
def test_fake_payments_copied_sites_and_used_goods_sold_as_new_are_fraud(rules_only, text):
    assert RiskFlag.FRAUD in flags(rules_only, text)


@pytest.mark.parametrize(
    "text",
    [
        "停暖一个星期,家里两个老人都冻病了",
        "广告牌被风刮下来砸在路人身上",
        "在你们店吃坏肚子了,一晚上没睡",
        "美甲店的工具没有消毒干净,我的手指发炎了",
        "The gate closed on my son and knocked him over.",
        "The new light switch gives off a spark every time I press it.",
    ],
)
def test_harm_and_dangers_in_other_words_are_safety(rules_only, text):
    assert RiskFlag.SAFETY in flags(rules_only, text)


def test_a_door_closing_on_a_bag_is_no_danger(rules_only):
    text = "The lift door closed on my shopping bag. Nobody was hurt, please check the sensor."
    assert RiskFlag.SAFETY not in flags(rules_only, text)


# Rules default-2026.7 (eighth helper): kinds the dev split (evaluation/dev/) showed, fixed as
# kinds (negation scope, whole words, word families), not as its phrases.
@pytest.mark.parametrize(
    "text",
    [
        "我们不想走到起诉那一步,只想要个说法",
        "我不会把这件事发到微博上,只希望尽快换货",
        "No one was in any danger, the candle only flickered.",
        "I'm not calling it a scam, only a very steep fee.",
        "Nothing was stolen from the locker, the door just sticks.",
    ],
)
def test_a_negation_reaches_over_an_intention_and_a_few_words(rules_only, text):
    assert flags(rules_only, text) == ()


@pytest.mark.parametrize(
    "text",
    [
        "如果三天内不处理将委托律师起诉你们",
        "再不退款我就不会客气了,直接去法院起诉",
    ],
)
def test_a_condition_still_ends_before_its_consequence(rules_only, text):
    assert RiskFlag.LEGAL in flags(rules_only, text)


@pytest.mark.parametrize(
    "text",
    [
        "想给插座加一个防触电的保护盖,有卖吗",
        "我是做自媒体的,想跟你们谈谈广告合作",
        "你们抖音直播间的那款保温杯还补货吗",
        "客服把我上次的投诉记录截图发给了我,说已经处理完了",
        "价格比隔壁贵了一半,还说全网最低,骗谁呢",
        "The media centre's projector keeps flickering during our lessons.",
        "The soundbar cuts out whenever we watch the news.",
    ],
)
def test_words_inside_other_words_and_channels_set_no_flag(rules_only, text):
    assert flags(rules_only, text) == ()


@pytest.mark.parametrize(
    ("text", "flag"),
    [
        ("说好的保本理财,到期才知道根本不存在这个项目,他明明是在骗我们", RiskFlag.FRAUD),
        (
            "The 'new' printer was passed off as unused but had 3,000 pages on its counter.",
            RiskFlag.FRAUD,
        ),
        ("我的身份证信息是怎么流出去的?天天有人打电话", RiskFlag.DATA_LEAK),
        ("欠费业主的姓名和门牌号被贴出来了,我家也在上面", RiskFlag.DATA_LEAK),
        (
            "After your van left our details on the windscreen, strangers know where I live.",
            RiskFlag.DATA_LEAK,
        ),
        ("The lettings office sent my bank statements to another tenant.", RiskFlag.DATA_LEAK),
        ("The caller knew my flight number, so I trusted him.", RiskFlag.DATA_LEAK),
        ("The table's sharp edge sliced my nephew's forehead.", RiskFlag.SAFETY),
        (
            "If this isn't fixed I'm telling the local news and posting on social media.",
            RiskFlag.MEDIA,
        ),
    ],
)
def test_word_families_of_fraud_leaks_harm_and_media(rules_only, text, flag):
    assert flag in flags(rules_only, text)


# Rules default-2026.8 (ninth helper): kinds the second dev batch (evaluation/dev/03–04) showed,
# fixed as mechanisms (clause scope of hypotheticals and hearsay, precautions and names, quoted
# speech, the model's data_leak) and word families, not as its phrases. Cases of our own.
@pytest.mark.parametrize(
    "text",
    [
        "如果有人冒用我的身份证去办卡,你们会怎么处理?",
        "要是外卖被人下了毒怎么办?我只是问问",
        "听说你们另一家分店有人食物中毒,我这边点的没问题,就是送晚了",
        "What if a scammer gets my card details, am I covered?",
        "My cousin reckons your bakery once gave someone food poisoning. My order was just late.",
    ],
)
def test_a_hypothetical_or_hearsay_clause_sets_no_event_flag(rules_only, text):
    assert flags(rules_only, text) == ()


@pytest.mark.parametrize(
    ("text", "flag"),
    [
        ("如果三天之内不给我退款,我就去法院起诉你们", RiskFlag.LEGAL),
        ("要是再这样拖着,我就发到微博上", RiskFlag.MEDIA),
        ("如果早点修好就不会这样了,现在我儿子的手被烫伤了", RiskFlag.SAFETY),
        ("If you can't refund me I will be speaking to a lawyer.", RiskFlag.LEGAL),
    ],
)
def test_a_condition_keeps_its_threat_and_the_next_clause_its_event(rules_only, text, flag):
    assert flag in flags(rules_only, text)


@pytest.mark.parametrize(
    "text",
    [
        "你们的反诈骗宣传做得挺好,想问问怎么开通转账提醒",
        "店里有没有防诈骗的宣传单,我想拿几份给社区",
        "I rang the fraud team only to raise my transfer limit.",
        "Your anti-fraud checks blocked my own payment twice this week.",
        "The hazard indicator on the heater blinks, what does it mean?",
    ],
)
def test_a_precaution_or_a_named_thing_is_no_event(rules_only, text):
    assert flags(rules_only, text) == ()


@pytest.mark.parametrize(
    "text",
    [
        '保安冲我喊"你去报警啊,报警也没用",态度极其恶劣',
        'The manager laughed and said "go to the papers then" when I asked for a refund.',
    ],
)
def test_a_threat_only_in_someone_elses_quoted_words_is_no_threat(rules_only, text):
    assert flags(rules_only, text) == ()


@pytest.mark.parametrize(
    ("text", "flag"),
    [
        ('他说"报警没用",可我昨天已经报警了', RiskFlag.LEGAL),
        ('再不处理我就发到"黑猫投诉"和微博上', RiskFlag.MEDIA),
    ],
)
def test_a_threat_outside_the_quotes_still_counts(rules_only, text, flag):
    assert flag in flags(rules_only, text)


@pytest.mark.parametrize(
    ("text", "flag"),
    [
        ("东西被偷了,我已经报了警", RiskFlag.LEGAL),
        ("月底前不解决,我就写信给通信管理局", RiskFlag.MEDIA),
        ("If the line isn't fixed I'm writing to Ofcom.", RiskFlag.MEDIA),
        ("The prawn salad made us ill for the whole weekend.", RiskFlag.SAFETY),
        ("Three of the guests came down with fever after the buffet.", RiskFlag.SAFETY),
        ("孩子从你们的滑梯上摔下来,膝盖全破了", RiskFlag.SAFETY),
        ("The caller said he was from your bank and asked for my PIN.", RiskFlag.FRAUD),
        (
            "A man in your uniform took the cash; your office says he is not one of yours.",
            RiskFlag.FRAUD,
        ),
    ],
)
def test_word_families_of_2026_8(rules_only, text, flag):
    assert flag in flags(rules_only, text)


def test_the_model_adds_no_data_leak_beside_fraud():
    # A scam that used my identity: §2 counts it as fraud; the model's data_leak there is the
    # scam's own use of my details (policy data, risk_model_not_beside).
    rules = load_default_rules()
    assert rules.risk_model_not_beside == {RiskFlag.DATA_LEAK: [RiskFlag.FRAUD]}
    eager = rules.model_copy(update={"risk_model_min_probability": 0.51})
    text = "有人冒充我,用假身份证在营业厅补办了我的手机卡,把我的个人信息全改了"
    result = Classifier(eager).classify(ComplaintFacts(description=text, channel="phone"))
    assert RiskFlag.FRAUD in result.risk_flags
    assert "data_leak" not in result.explanation["risk_flags"].get("model", {})
