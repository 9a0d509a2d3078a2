import pytest

from rag.abstain import Grounder

from .conftest import REPORT

CORPUS = REPORT.read_text(encoding="utf-8")


pytestmark = pytest.mark.usefixtures("private_dictionary")


def test_a_place_the_report_never_names_is_flagged_in_both_languages():
    g = Grounder([CORPUS])
    zh = g("报告如何评价中美元首在旧金山的会晤？", "zh")
    assert zh.not_found and zh.missing == ("旧金山",)
    en = g("What does the report say about the summit in San Francisco?", "en")
    assert en.not_found and en.missing == ("San Francisco",)


def test_names_and_years_the_report_does_mention_are_not_flagged():
    g = Grounder([CORPUS])
    assert not g("拜登政府在巴厘岛会晤后做了什么？", "zh").not_found
    assert not g("What did Xi and Biden agree in Bali in November 2022?", "en").not_found
    assert not g("东南亚三国如何看待印太经济框架？", "zh").not_found  # a count, not a name
    assert not g("How did ASEAN respond during the Trump years?", "en").not_found


def test_a_capital_standing_for_its_government_is_not_flagged():
    g = Grounder([CORPUS])
    # The report never writes 北京, 华府, 科伦坡 or Moscow, but it does name their countries.
    assert not g("在华盛顿与北京的角力中，中方仍在与美国哪些人士和群体对话？", "zh").not_found
    assert not g("经过几年的较量，北京与华府的角力正进入哪种阶段？", "zh").not_found
    assert not g("科伦坡与伊斯兰堡当年遭遇了怎样的困局？", "zh").not_found
    assert not g("Which gatherings did Phnom Penh, Bangkok and Jakarta host in 2022?", "en").not_found
    # A provincial capital is not a country: 西安 is still a place the report never names.
    assert g("报告如何评价在西安举行的峰会？", "zh").missing == ("西安",)


def test_only_names_the_question_is_about_are_judged():
    g = Grounder([CORPUS])
    assert not g("According to Phnom Penh, what matters most?", "en").not_found  # whose view, not what
    assert not g("在旧金山看来，东盟的作用是什么？", "zh").not_found
    # Demonyms, languages and counts are not names of things the report must mention.
    assert not g("Which Malaysian industrial capability does the US tap?", "en").not_found
    assert not g("DOC是哪份文件的英文缩写？", "zh").not_found
    assert not g("2022年5月，哪三国外长发表联合声明？", "zh").not_found
    # A capitalised phrase the dictionary does not know as a proper noun cannot be judged absent.
    assert not g("Which shortfalls does the 20th Party Congress say are getting worse?", "en").not_found


def test_a_page_break_inside_a_name_does_not_hide_it():
    assert not Grounder(["华盛\n\n顿政客和舆论"])("华盛顿如何判断形势？", "zh").not_found


def test_a_month_of_a_year_the_corpus_never_mentions_is_flagged():
    g = Grounder(["2022年8月发生了一件事。5月，峰会召开。"])
    assert g("2022年9月发生了什么？", "zh").missing == ("2022年9月",)
    assert g("What happened in September 2022?", "en").missing == ("September 2022",)
    assert not g("2022年8月发生了什么？", "zh").not_found
    assert not g("What happened in May 2022?", "en").not_found  # "5月" may be May of that year
    assert not g("2022年13月发生了什么？", "zh").not_found  # not a month


def test_a_year_outside_the_report_is_flagged():
    g = Grounder(["2022 年的报告。"])
    assert g("2031年会怎样？", "zh").missing == ("2031",)
    assert not g("2022年发生了什么？", "zh").not_found


def test_the_flag_reaches_the_answer(hash_assistant):
    answer = hash_assistant.ask("报告如何评价中美元首旧金山会晤？")
    assert answer.not_found and answer.hits  # the closest passages are still listed
    assert "旧金山" in answer.not_found_reason and answer.to_dict()["not_found_reason"] == answer.not_found_reason
    assert not hash_assistant.ask("东盟的中心地位是什么？").not_found


# -- the answer-type check ---------------------------------------------------------------------

from dataclasses import dataclass

from rag.abstain import Expectation, asked_for, expected_answer, states, unstated
from rag.chunking import Passage


def test_questions_are_read_for_the_kind_of_answer_they_want():
    assert expected_answer("2022年朝鲜共进行了多少次导弹试射？", "zh") == Expectation("number", "导弹")
    assert expected_answer("2022年中国对东盟的直接投资流量是多少？", "zh") == Expectation("number", "流量")
    assert expected_answer("投融资约有多大比例经由新加坡流转？", "zh") == Expectation("share")
    assert expected_answer("How many Chinese students were enrolled at US universities?", "en") == Expectation("number", "students")
    assert expected_answer("What was the total value of trade among RCEP members?", "en") == Expectation("number", "trade")
    assert expected_answer("How many times did the strategy mention China?", "en") == Expectation("number")
    assert expected_answer("How much did China contribute to growth?", "en") == Expectation("number")
    assert expected_answer("自贸区谈判于哪一年正式完成？", "zh") == Expectation("date")
    assert expected_answer("When did Xi Jinping put forward the initiative?", "en") == Expectation("date")
    assert expected_answer("RCEP于哪一天正式生效？", "zh") == Expectation("day")
    assert expected_answer("中方提出的地区发展观包含哪几个要素？", "zh") is None  # which ones, not how many
    assert expected_answer("How large is Sri Lanka's external debt?", "en") == Expectation("number", "debt")
    assert expected_answer("How large a share of Asia's economy did China represent?", "en") == Expectation("share")
    assert expected_answer("What is the combined annual number of visitors?", "en") == Expectation("number", "visitors")
    assert expected_answer("东盟的中心地位是什么？", "zh") is None
    assert expected_answer("Why does the report call the region at a crossroads?", "en") is None


def test_a_sentence_states_a_figure_a_share_or_a_date():
    assert states("截至 2022 年 3 月，新加坡累计在华实际投资 1240 亿美元。", "number")
    assert states("有必要突出以下六大关键着力点。", "number")
    assert not states("2022 年发生了很多事。", "number")  # a year is not a figure
    assert not states("6.5 推动朝鲜和美国等直接当事方解决彼此合理安全关切。", "number")  # a recommendation label
    assert not states("规划对华“海陆空三位一体核威慑”。", "number")
    assert states("约 70% 向沿线国家投融资的流转。", "share") and not states("同 14 个国家陆地接壤。", "share")
    assert states("美国国务卿布林肯将于 2023 年初访华。", "date") and not states("一是落实全球发展倡议。", "date")
    assert states("20世纪70年代，美国从越南撤军。", "date")  # a decade or a century is a date
    # Words that place an event relative to another are not dates.
    assert not states("冷战结束以来，亚洲维持了总体和平。", "date")
    assert not states("美国中期选举期间，两党激烈争斗。", "date")
    assert states("该倡议于 2021 年 9 月 21 日提出。", "day") and not states("该倡议于 2021 年 9 月提出。", "day")


@dataclass
class _Hit:
    passage: Passage
    sentences: tuple = ()


def _hit(text: str) -> _Hit:
    spans, pos = [], 0
    for piece in text.split("。"):
        if piece:
            spans.append((pos, pos + len(piece) + 1))
            pos += len(piece) + 1
    p = Passage("p", "r.txt", ("s",), 0, len(text), 1, 1, text, "prose", tuple(spans))
    return _Hit(p, tuple(spans))


def test_a_figure_must_be_about_the_thing_counted():
    hits = [_hit("拜登政府的报告其中 60 多次提到中国。朝鲜半岛局势持续升温。")]
    assert unstated("2022年朝鲜共进行了多少次导弹试射？", "zh", hits)
    assert unstated("How many Chinese students study in the US?", "en", hits)
    assert unstated("How many times did the report mention China?", "en", hits) is None
    assert unstated("朝鲜半岛局势为何升温？", "zh", hits) is None  # not a number question


def test_an_acronym_that_spells_a_pronoun_does_not_end_the_thing_counted():
    # "US" is the country, not the pronoun "us": the thing counted is the troops.
    assert expected_answer("How many US troops are stationed in South Korea?", "en") == Expectation("number", "troops")
    hits = [_hit("韩国总统 6 月出席北约峰会。美韩同盟持续强化。")]
    assert "troops" in unstated("How many US troops are stationed in South Korea?", "en", hits)
    assert unstated("How many US troops are stationed in South Korea?", "en", [_hit("美国在韩国驻扎约 2.8 万人的部队。")]) is None


def test_a_date_question_needs_a_date_near_the_top_of_a_passage():
    assert unstated("谈判于哪一年完成？", "zh", [_hit("建设中国—东盟自贸区 3.0 版。引导双方合作。")])
    assert unstated("倡议何时提出？", "zh", [_hit("该倡议由习近平主席在 2021 年 9 月提出。")]) is None


def test_the_report_s_own_unanswerable_figures_are_flagged(real_assistant):
    answer = real_assistant.ask("2022年朝鲜共进行了多少次导弹试射？")
    assert answer.not_found and answer.hits
    assert "导弹" in answer.not_found_reason
    assert not real_assistant.ask("截至2022年3月，新加坡累计在华实际投资多少？").not_found
    assert not real_assistant.ask("When did Xi Jinping put forward the Global Development Initiative?").not_found
    assert real_assistant.ask("中国—东盟自贸区 3.0 版谈判于哪一年正式完成？", k=1).not_found  # checked past k


# -- a figure or a date answers only in a passage about what the question names -----------------


def test_a_figure_about_another_country_does_not_answer():
    g = Grounder(["斯里兰卡陷入债务危机。美国债务规模达 31 万亿美元。"])
    question = "How large is Sri Lanka's external debt?"
    about = g.about(question, "en")
    assert [n.shown for n in about] == ["Sri Lanka"]
    other = [_hit("美国债务规模达 31 万亿美元。")]
    assert unstated(question, "en", other) is None  # a figure for "debt", without the names
    reason = unstated(question, "en", other, about)
    assert reason and "Sri Lanka" in reason and "debt" in reason
    assert unstated(question, "en", [_hit("斯里兰卡的债务约 500 亿美元。")], about) is None


def test_a_passage_may_name_a_country_by_its_one_character_form():
    g = Grounder(["中国与美国。美国官员 2022 年 3 次访华。"])
    question = "How many times did US officials visit China in 2022?"
    assert {n.shown for n in g.about(question, "en")} == {"US", "China"}
    # 访华: 华 is China's short form; 美国 is spelled out.
    assert unstated(question, "en", [_hit("美国官员 2022 年 3 次访华。")], g.about(question, "en")) is None
    g = Grounder(["中国与巴基斯坦。"])
    question = "中国向巴基斯坦提供了多少贷款？"
    assert {n.shown for n in g.about(question, "zh")} == {"中国", "巴基斯坦"}
    assert unstated(question, "zh", [_hit("中巴经济走廊贷款 50 亿美元。")], g.about(question, "zh")) is None
    assert unstated(question, "zh", [_hit("中国向斯里兰卡贷款 50 亿美元。")], g.about(question, "zh"))


def test_only_names_the_corpus_mentions_and_the_question_is_about_are_asked_of_passages():
    g = Grounder(["巴基斯坦与中国。"])
    # A demonym is not a name; a country the corpus never mentions cannot be asked of its passages.
    assert g.about("How many Chinese students study in Malaysia?", "en") == []
    assert [n.shown for n in g.about("How many people died in Pakistan's floods?", "en")] == ["Pakistan"]
    assert g.about("According to Pakistan, how many people died?", "en") == []  # whose view
    assert not Grounder(["东盟"])("According to Phnom Penh Post, what matters most?", "en").not_found


# -- in a library: names the corpus mentions, but never in one document --------------------------


def test_names_no_one_document_mentions_together_are_flagged_in_a_library():
    library = Grounder(["2023 年中美元首在巴厘岛会晤。", "旧金山举办了一场音乐节。"])
    g = library("报告如何评价2023年中美元首旧金山会晤？", "zh")
    assert g.not_found and g.missing == () and set(g.apart) == {"旧金山", "2023"}
    assert "旧金山" in g.reason and "together" in g.reason
    assert not library("2023年中美元首在巴厘岛会晤的成果是什么？", "zh").not_found  # one document has both
    # One document: every name it mentions is mentioned together.
    assert not Grounder(["2023 年中美元首在巴厘岛会晤。旧金山举办了一场音乐节。"])(
        "报告如何评价2023年中美元首旧金山会晤？", "zh").not_found


def test_a_word_the_segmenter_could_cut_otherwise_is_not_a_name_of_the_question():
    # 中美元首 is cut 中/美元/首; 美元 ("US dollar") is not what the question is about.
    g = Grounder(["中美元首会晤。美元汇率上升。"])
    assert [n.shown for n in g.about("中美元首会晤了多少次？", "zh")] == []
    assert [n.shown for n in g.about("美元的汇率是多少？", "zh")] == ["美元"]
    # 中国是在 could be cut 中/国是/在 only by leaving 中 alone: 中国 is what the question is about.
    g = Grounder(["中国申请加入协定。"])
    assert [n.shown for n in g.about("中国是在哪一年正式申请加入CPTPP的？", "zh")] == ["中国"]



def test_a_name_made_of_one_character_forms_is_spoken_of_by_its_parts():
    g = Grounder(["中美关系。中国与美国。"])
    question = "中美两国的贸易额是多少？"
    about = g.about(question, "zh")
    assert [n.shown for n in about] == ["中美"]
    assert unstated(question, "zh", [_hit("中国与美国的贸易额为 6900 亿美元。")], about) is None
    assert unstated(question, "zh", [_hit("中国与日本的贸易额为 3500 亿日元。")], about)


# -- the best passages are the report's body; in a library, of a document about the question ----


def _hit_in(text: str, source: str, kind: str = "prose") -> _Hit:
    h = _hit(text)
    p = h.passage
    return _Hit(Passage(f"{source}#1", source, p.section, p.start, p.end, 1, 1, text, kind, p.sentences), h.sentences)


def test_a_cover_passage_takes_no_place_among_the_best_three():
    question = "How many key focus areas does the report set out?"
    cover = _hit_in("亚太命运共同体展望。清华大学战略与安全研究中心。", "r.txt", kind="cover")
    body = [_hit_in("中国要超越竞赢思维。", "r.txt"), _hit_in("建立全面的对话平台。", "r.txt")]
    answer = _hit_in("本报告提出 8 大领域 40 项建议。", "r.txt")
    # The answer is the fourth hit, the third of the body: it is read.
    assert unstated(question, "en", [cover, *body, answer]) is None
    assert unstated(question, "en", [*body, _hit_in("一是搭建地区框架。", "r.txt"), answer])


def test_in_a_library_a_figure_must_come_from_a_document_that_mentions_the_names_and_years():
    ciss = "巴基斯坦 2022 年遭遇洪灾。中巴经济走廊建设推进。"
    storm = "台风造成 39 人死亡，巴士停运。"  # 巴 of 巴士 is not Pakistan, and 2022 is not named
    g = Grounder([ciss, storm], sources=["ciss.txt", "storm.md"])
    question = "How many people died in Pakistan's 2022 floods?"
    grounding = g(question, "en")
    assert not grounding.not_found and grounding.documents == frozenset({"ciss.txt"})
    hits = [_hit_in("台风造成 39 人死亡，巴士停运。", "storm.md")]
    # Without the documents, 巴 of 巴士 passes for Pakistan and the death toll answers.
    assert unstated(question, "en", hits, grounding.about) is None
    reason = unstated(question, "en", hits, grounding.about, grounding.documents)
    assert reason and "from a document that mentions Pakistan, 2022" in reason
    answered = [_hit_in("巴基斯坦 2022 年洪灾造成 1700 人死亡。", "ciss.txt")]
    assert unstated(question, "en", answered, grounding.about, grounding.documents) is None


def test_one_document_or_no_sources_narrows_nothing():
    assert Grounder(["巴基斯坦 2022 年遭遇洪灾。"], sources=["a.txt"])("How many people died in Pakistan's 2022 floods?", "en").documents is None
    assert Grounder(["巴基斯坦 2022 年。", "台风。"])("How many people died in Pakistan's 2022 floods?", "en").documents is None
    g = Grounder(["巴基斯坦 2022 年。", "台风。"], sources=["a.txt", "b.md"])
    assert g("报告如何看待中心地位？", "zh").documents is None  # no name or year to narrow by
    assert g("报告如何评价巴基斯坦2022年的局势？", "zh").documents is None  # asks for no figure or date
    assert g("2022年巴基斯坦有多少人口？", "zh").documents == frozenset({"a.txt"})


def test_in_a_library_a_month_of_a_year_must_be_mentioned_with_the_names():
    ciss = "2022年11月，中美元首会晤。解放军加强战备。"
    other = "2022年8月，台风登陆。"
    g = Grounder([ciss, other], sources=["ciss.txt", "other.md"])
    grounding = g("2022年8月解放军在台岛周边的演习持续了几天？", "zh")
    assert grounding.not_found and "2022年8月" in grounding.reason and "解放军" in grounding.reason
    # The month named with the names in one document (or that month without its year) answers.
    assert not g("2022年11月解放军做了什么？", "zh").not_found
    assert not Grounder([ciss + "8月，演习开始。", other])("2022年8月解放军在台岛周边的演习持续了几天？", "zh").not_found
    # One document: the month is judged against the whole corpus, as before.
    assert not Grounder([ciss + other])("2022年8月解放军在台岛周边的演习持续了几天？", "zh").not_found
    assert not Grounder([ciss, other])("What happened in August 2022?", "en").not_found  # one month, no names


def test_a_month_without_its_year_counts_only_in_a_document_that_names_the_year():
    question = "What was announced in San Diego in March 2023?"
    assert not Grounder(["2023年的报告。3月，峰会召开。"])(question, "en").not_found
    # The year in one report and a bare 3月 in another is not March 2023.
    grounding = Grounder(["2023年的报告。", "3月，峰会召开。"])(question, "en")
    assert grounding.not_found and "March 2023" in grounding.reason


def test_who_holds_an_office_needs_a_person_named_in_the_best_sentences():
    assert asked_for("Who is the current Secretary-General of ASEAN?", "en") == Expectation("person", "Secretary-General")
    assert asked_for("Which Indonesian president chaired the 2022 G20 summit?", "en") == Expectation("person", "president")
    assert asked_for("Who were the biggest trading partners?", "en") is None  # not an office
    assert asked_for("How many ministers attended the summit?", "en").kind == "number"
    # The ranking's answer-type boost does not read persons.
    assert expected_answer("Who is the current Secretary-General of ASEAN?", "en") is None
    hits = [_hit("东盟秘书处设在雅加达。东盟共同体建设持续推进。")]
    assert "Secretary-General" in unstated("Who is the current Secretary-General of ASEAN?", "en", hits)
    assert unstated("Who is the current Secretary-General of ASEAN?", "en", [_hit("东盟秘书长林玉辉表示欢迎。")]) is None
    # The sentence that speaks of the office must name its holder.
    question = "中美防长会晤时的中国国防部长是谁？"
    assert unstated(question, "zh", [_hit("中美两国国防部长举行会晤。拜登总统对此予以回应。")])
    assert unstated(question, "zh", [_hit("中国国防部长魏凤和与美方会晤。")]) is None


def test_what_was_a_quantity_noun_asks_for_its_figure():
    # CC-CEDICT renders the phrase as a quantity noun (参选率, 死亡人数): a figure is asked for.
    question = "What was voter turnout in the 2022 US midterm elections?"
    assert expected_answer(question, "en") == Expectation("number", "voter turnout")
    assert expected_answer("What was the death toll in the floods?", "en") == Expectation("number", "death toll")
    # "… of X": the thing counted is X, as in "what is the value of X".
    assert expected_answer("What was the death toll of the Pakistan floods?", "en") == Expectation("number", "floods")
    # Not a quantity (结果, 指导思想): an open question, as before.
    assert expected_answer("What were the results of the 2022 US midterm elections?", "en") is None
    assert expected_answer("What was the outcome in the end?", "en") is None
    reason = unstated(question, "en", [_hit("2022 年中期选举后，共和党取得众议院 222 席。")])
    assert reason and "voter turnout" in reason
    assert unstated(question, "en", [_hit("2022 年中期选举的参选率为 46.8%。")]) is None


# -- a date answers only in a sentence about what the question dates ------------------------------


def test_a_date_must_sit_in_a_sentence_that_speaks_of_what_is_dated():
    corpus = "中国积极推进加入数字经济伙伴关系协定的进程。2022年11月，亚太经合组织会议召开。" + "中国与亚太。" * 30
    g = Grounder([corpus])
    question = "中国是在哪一年正式申请加入CPTPP的？"
    grounding = g(question, "zh")
    assert not grounding.not_found and grounding.events
    # The best sentence gives a date, but of a meeting: the question's 申请/加入/CPTPP are not in it.
    meeting = [_hit("2022年11月，亚太经合组织会议召开。")]
    reason = unstated(question, "zh", meeting, grounding.about, grounding.documents, grounding.events)
    assert reason and "date" in reason
    joined = [_hit("2021年9月，中国正式申请加入该协定。")]
    assert unstated(question, "zh", joined, grounding.about, grounding.documents, grounding.events) is None
    # Without the events (as before), any date in the best sentences about 中国 answers.
    assert unstated(question, "zh", [_hit("2022年11月，中国出席亚太经合组织会议。")], grounding.about) is None


def test_words_common_in_the_corpus_and_names_say_nothing_of_what_is_dated():
    g = Grounder(["中国与东盟合作。" * 20 + "布林肯将于 2023 年初访华。国务卿。"])
    # 合作 is in every sentence; China is a name the question is about: neither is an event word.
    assert all("合作" not in forms for forms in g.events("When did China and ASEAN begin cooperation?", "en"))
    events = g.events("When was Secretary of State Antony Blinken expected to visit China?", "en", g.about(
        "When was Secretary of State Antony Blinken expected to visit China?", "en"))
    # A phrase's rendering speaks of its words: "Secretary of State" -> 国务卿.
    assert any("国务卿" in forms for forms in events)
    assert all("china" not in forms for forms in events)


def test_a_question_that_dates_only_general_words_or_names_is_not_judged():
    g = Grounder(["2022年11月，中美两国国防部长在第9届东盟防长扩大会议期间举行会晤。" + "中国与东盟合作。" * 20])
    # "take place" (CC-CEDICT: many senses, none 举行) says nothing of which event; ADMM-Plus has no
    # rendering: nothing to judge, and the dated sentence answers as before.
    question = "When did the 9th ADMM-Plus take place?"
    grounding = g(question, "en")
    assert grounding.events == ()
    hits = [_hit("2022年11月，中美两国国防部长在第9届东盟防长扩大会议期间举行会晤。")]
    assert unstated(question, "en", hits, grounding.about, grounding.documents, grounding.events) is None
    # A specific word ("railway" -> 铁路) is judged, with the general ones as further spellings.
    assert g.events("When did construction of the railway begin?", "en")


def test_the_documents_dated_like_the_question_are_those_that_mention_its_years_and_months():
    g = Grounder(
        ["2022 年 11 月的领导人会议。", "2025年亚太经合组织会议在庆州举行。", "2022年的局势与2025年的展望。"],
        sources=["a.txt", "b.txt", "c.txt"],
    )
    assert g.dated("At the November 2022 APEC leaders' meeting, what did Xi say?") == frozenset({"a.txt"})
    assert g.dated("2022年的局势如何？") == frozenset({"a.txt", "c.txt"})
    assert g.dated("What did the 2025 meeting adopt?") == frozenset({"b.txt", "c.txt"})
    # Nothing to narrow: no year, a year no document or every document mentions, one document, no sources.
    assert g.dated("亚太经合组织会议通过了什么？") is None
    assert g.dated("What happened in 2019?") is None
    assert Grounder(["2022年。", "2022年。"], sources=["a.txt", "b.txt"]).dated("2022年怎样？") is None
    assert Grounder(["2022年。"], sources=["a.txt"]).dated("2022年怎样？") is None
    assert Grounder(["2022年。", "2025年。"]).dated("2022年怎样？") is None


def test_the_thing_counted_ends_at_its_plural_noun_and_a_progressive_verb_has_none():
    # "How many people took part": "people" is what is counted (a counter), "took part" its verb.
    assert expected_answer("How many people took part in the second rehearsal?", "en") == Expectation("number", "took")
    assert expected_answer("How many people died in the floods?", "en") == Expectation("number", "died")
    assert expected_answer("How many women enrolled in training courses in 2025?", "en") == Expectation("number", "women")
    assert expected_answer("How many patrol flights took place in 2025?", "en") == Expectation("number", "flights")
    assert expected_answer("How many US troops are stationed in Korea?", "en") == Expectation("number", "troops")
    # "how much was <subject> earning": the amount earned is not the worker.
    assert expected_answer("How much was the young rebar worker earning per day?", "en") == Expectation("number")
    hits = [_hit("一年后，她的日薪增至约350-360元。参与人数增至约4万人。")]
    assert unstated("How much was the young rebar worker earning per day?", "en", hits) is None
    assert unstated("How many people took part in the second rehearsal?", "en", hits) is None


def test_when_may_be_answered_by_a_time_of_day_but_which_year_is_not():
    hits = [_hit("美方的网络攻击多选择在北京时间深夜至凌晨发起。")]
    assert unstated("美方的网络攻击多选择在什么时间发起？", "zh", hits) is None
    assert unstated("美方的网络攻击是哪一年发起的？", "zh", hits)
    assert unstated("When did the attacks usually start?", "en", [_hit("The attacks usually started after midnight.")]) is None


def test_a_unit_before_de_measures_the_noun_after_it():
    assert expected_answer("双方签署了多少亿欧元的商业合同？", "zh") == Expectation("number", "合同")
    hits = [_hit("双方签署了多项合作文件。访问期间共有300名企业家随行。")]
    assert unstated("双方签署了多少亿欧元的商业合同？", "zh", hits)
    assert unstated("双方签署了多少亿欧元的商业合同？", "zh", [_hit("双方签署了总额约90亿欧元的合同。")]) is None


def test_an_irregular_plural_head_is_read_by_its_singular_and_a_word_may_hold_digits():
    hits = [_hit("参加培训的女性学员达120人。")]
    assert unstated("How many women enrolled in the training courses?", "en", hits) is None
    assert expected_answer("How many Australian P-8A patrol flights took place?", "en") == Expectation("number", "flights")


def test_a_date_written_in_figures_answers_a_date_or_a_day():
    hits = [_hit("新版国家标准于2025-09-03起正式实施。")]
    assert unstated("新版国家标准于哪一天正式实施？", "zh", hits) is None
    assert unstated("新版国家标准于哪一天正式实施？", "zh", [_hit("新版国家标准已经正式实施。")])


def test_a_head_chinese_writes_with_one_character_is_found_by_that_character():
    hits = [_hit("该港今年共有12艘船停靠。")]
    assert unstated("How many ships called at the port this year?", "en", hits) is None
    assert unstated("How many tons of grain were shipped?", "en", [_hit("全年运出粮食约3万吨。")]) is None
    assert unstated("How many ships called at the port this year?", "en", [_hit("该港今年共接待12万名游客。")])


def test_the_words_of_the_asking_are_not_what_is_dated():
    g = Grounder(["金永南因病逝世。" * 20 + "2025年11月3日，金永南因病逝世，享年97岁。"])
    events = g.events("How old was Kim Yong Nam when he died, and on what date?", "en")
    # "old" is what "how" asks, "date" is the answer's kind; 逝世 is in every sentence: nothing left.
    assert all(not ({"old", "date"} & forms) for forms in events)
    question = "How old was Kim Yong Nam when he died, and on what date?"
    grounding = g(question, "en")
    hits = [_hit("2025年11月3日，金永南因病逝世，享年97岁。")]
    assert unstated(question, "en", hits, grounding.about, grounding.documents, grounding.events) is None
