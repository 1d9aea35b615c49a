# ruff: noqa: RUF001  (non-Latin text on purpose)
"""Prompt-injection rules for languages other than English.

Same behaviours as :mod:`injection` (override verb + instruction noun, system-prompt
extraction, restriction removal, role reassignment) for Spanish, French, German,
Portuguese, Italian, Dutch, Polish, Turkish, Chinese, Japanese, Korean, Russian, Arabic
and Hindi. Patterns run on lowered text.
"""

from __future__ import annotations

import re

from mcp_guard.inspection.hits import Rule


def _rules() -> tuple[Rule, ...]:
    def r(tactic: str, gate: tuple[str, ...], pattern: str, weight: int = 2) -> Rule:
        return Rule(tactic, weight, gate, re.compile(pattern))

    ov = "instruction override"
    ex = "system prompt extraction"
    jb = "jailbreak"
    rh = "role hijack"
    return (
        # Spanish
        r(
            ov,
            ("instruc", "indicaci", "regla", "órden", "directri"),
            r"\b(?:ignora|ignore|ignorad|ignoren|olvida|olvide|olvidad|olviden|descarta|omite|haz caso omis"
            r"o|no sigas|"
            r"pasa por alto)\b.{0,40}\b(?:instrucci[oó]n|instrucciones|indicaciones|reglas|[oó]rdenes|direc"
            r"trices)",
        ),
        r(
            ex,
            ("prompt", "instruc"),
            r"\b(?:revela|muestra|mu[eé]strame|dime|imprime|repite|ens[eé][nñ]ame|escribe)\b.{0,40}\b(?:(?:"
            r"prompt|"
            r"instrucciones|mensaje) (?:del|de) sistema|tus instrucciones|tu prompt|instrucciones (?:inicia"
            r"les|ocultas))",
        ),
        r(
            jb,
            ("sin ",),
            r"\bsin (?:ning[uú]n tipo de |ninguna |ning[uú]n )?(?:restricci[oó]n|restricciones|filtros?|"
            r"censura|l[ií]mites [eé]ticos|reglas [eé]ticas)\b(?!\s+(?:de|del|para|en)\b)",
        ),
        r(
            rh,
            ("ahora eres", "a partir de ahora"),
            r"\b(?:ahora eres|a partir de ahora (?:eres|ser[aá]s|act[uú]a))\b",
        ),
        # French
        r(
            ov,
            ("instruction", "consigne", "règle", "regle", "directive", "ordre"),
            r"\b(?:ignore[zrs]?|oublie[zrs]?|n[ée]glige[zr]?|ne tiens pas compte|ne tenez pas compte|fais a"
            r"bstraction|"
            r"faites abstraction|ne suis plus|ne suivez plus)\b.{0,40}\b(?:instructions?|consignes|r[eè]gle"
            r"s|directives|"
            r"ordres)",
        ),
        r(
            ex,
            ("prompt", "instruction", "consigne", "invite"),
            r"\b(?:r[ée]v[eè]le|montre|affiche|donne|r[ée]p[eè]te|dis|[ée]cris|imprime)[- ]?(?:moi|nous)?\b"
            r".{0,40}"
            r"\b(?:(?:prompt|invite|instructions?|consignes|message) (?:syst[eè]me|initiales?|cach[ée]es?)|"
            r"tes instructions|"
            r"ton prompt|vos instructions|votre prompt)",
        ),
        r(
            jb,
            ("sans ",),
            r"\bsans (?:aucune? )?(?:restrictions?|filtres?|censure|limites? [ée]thiques?|r[eè]gles "
            r"[ée]thiques)",
        ),
        r(
            rh,
            ("tu es maintenant", "désormais", "desormais", "à partir de maintenant"),
            r"\b(?:tu es maintenant|d[ée]sormais,? tu|[àa] partir de maintenant,? tu)\b",
        ),
        # German
        r(
            ov,
            ("anweisung", "instruktion", "regel", "vorgabe", "befehl", "richtlinie"),
            r"\b(?:ignorier\w*|vergiss\w*|vergessen sie|missacht\w*|[üu]bergeh\w*|verwirf\w*|beachte\w* nic"
            r"ht|"
            r"nicht (?:mehr )?beachten|setze?\w* au[sß]er kraft)\b.{0,40}(?:anweisung|instruktion|regeln|vo"
            r"rgaben|"
            r"befehle|richtlinien)",
        ),
        r(
            ex,
            ("prompt", "anweisung", "instruktion", "nachricht"),
            r"\b(?:verrate|zeig|zeige|gib|nenne|wiederhole|drucke|schreib|sag)\w*\b.{0,40}(?:system(?:anwei"
            r"sung|prompt|"
            r"nachricht|befehl)|(?:deine|ihre) (?:anweisungen|instruktionen|regeln|vorgaben)|den prompt|"
            r"(?:urspr[üu]nglichen|versteckten|geheimen) anweisungen)",
        ),
        r(
            jb,
            ("ohne ",),
            r"\bohne (?:jegliche |irgendwelche )?(?:einschr[äa]nkungen|filter|zensur|ethische|"
            r"moralische|regeln|grenzen)",
        ),
        r(
            rh,
            ("du bist jetzt", "du bist nun", "ab jetzt", "von nun an"),
            r"\b(?:du bist (?:jetzt|nun|ab sofort)|ab jetzt bist du|von nun an (?:bist|wirst|sollst) du)\b",
        ),
        # Portuguese
        r(
            ov,
            ("instru", "regra", "orienta", "diretri", "ordens"),
            r"\b(?:ignore|ignora|ignorem|esque[çc]a|esquece|esque[çc]am|desconsidere|desconsidera|descarte|"
            r"n[ãa]o siga)\b"
            r".{0,40}\b(?:instru[çc][ãa]o|instru[çc][õo]es|regras|orienta[çc][õo]es|diretrizes|ordens)",
        ),
        r(
            ex,
            ("prompt", "instru"),
            r"\b(?:revele|revela|mostre|mostra|diga|imprima|repita|me mostre|escreva)\b.{0,40}\b(?:(?:promp"
            r"t|instru[çc][õo]es|"
            r"mensagem) do sistema|suas instru[çc][õo]es|seu prompt|instru[çc][õo]es (?:iniciais|ocultas))",
        ),
        r(
            jb,
            ("sem ",),
            r"\bsem (?:nenhuma |qualquer )?(?:restri[çc][õo]es|restri[çc][ãa]o|filtros?|censura|"
            r"limites [ée]ticos)",
        ),
        r(
            rh,
            ("agora você é", "agora voce e", "a partir de agora"),
            r"\b(?:agora voc[êe] [ée]|a partir de agora,? voc[êe])\b",
        ),
        # Italian
        r(
            ov,
            ("istruzion", "regol", "diretti", "indicazion", "ordini"),
            r"\b(?:ignora|ignorate|ignori|dimentica|dimenticate|dimentichi|trascura|non seguire|non conside"
            r"rare)\b.{0,40}"
            r"\b(?:istruzioni|istruzione|regole|direttive|indicazioni|ordini)",
        ),
        r(
            ex,
            ("prompt", "istruzion"),
            r"\b(?:rivela|rivelami|mostra|mostrami|dimmi|stampa|ripeti|scrivi)\b.{0,40}\b(?:(?:prompt|istru"
            r"zioni|messaggio) "
            r"(?:di|del) sistema|le tue istruzioni|il tuo prompt|istruzioni (?:iniziali|nascoste))",
        ),
        r(
            jb,
            ("senza ",),
            r"\bsenza (?:alcuna |nessuna )?(?:restrizioni|filtri|censura|limiti etici|regole)",
        ),
        r(
            rh,
            ("ora sei", "d'ora in poi", "da ora in poi"),
            r"\b(?:ora sei|d'ora in poi|da ora in poi),? (?:sei|tu)\b",
        ),
        # Dutch, Polish, Turkish
        r(
            ov,
            ("instructie", "regels", "aanwijzing"),
            r"\b(?:negeer|vergeet|negeren)\b.{0,40}\b(?:instructies|regels|aanwijzingen)",
        ),
        r(
            ov,
            ("instrukcj", "polecen", "zasad"),
            r"\b(?:zignoruj|ignoruj|zapomnij|pomi[ńn])\b.{0,40}\b(?:instrukcje|instrukcji|polecenia|zasady)",
        ),
        r(
            ov,
            ("talimat", "komut", "kural"),
            r"(?:talimatlar[ıi]|komutlar[ıi]|kurallar[ıi])\w*\s.{0,20}(?:yok say|unut|g[öo]rmezden gel)",
        ),
        # Chinese
        r(
            ov,
            (
                "忽略",
                "无视",
                "忽视",
                "不要理会",
                "忘记",
                "忘掉",
                "放弃",
                "跳过",
                "不要遵守",
                "不再遵守",
                "不要遵循",
            ),
            r"(?:忽略|无视|忽视|不要理会|忘记|忘掉|放弃|跳过|不要遵守|不再遵守|不要遵循)[^。\n]{0,20}"
            r"(?:指令|指示|说明|规则|提示|命令|要求|设定|限制)",
        ),
        r(
            ex,
            ("系统", "提示词", "指令", "规则"),
            r"(?:告诉我|显示|输出|打印|泄露|透露|重复|展示|给我|说出|写出)[^。\n]{0,20}(?:系统提示|系统指令|系统消息|初始指令|"
            r"提示词|你的指令|你的规则|隐藏指令)",
        ),
        r(
            jb,
            ("限制", "约束", "审查", "过滤"),
            r"(?:没有|不受|无|解除|取消)(?:任何)?(?:限制|约束|审查|过滤|道德)",
        ),
        r(rh, ("你现在是", "从现在开始", "从现在起"), r"(?:你现在是|从现在(?:开始|起)[，,]?你)"),
        # Japanese
        r(
            ov,
            ("無視", "忘れ", "破棄", "従わ"),
            r"(?:以前|前|上記|これまで|今まで|先ほど|すべて|全て|元)の?[^。\n]{0,10}(?:指示|命令|ルール|指令|設定|プロンプト)"
            r"[^。\n]{0,6}(?:無視|忘れ|破棄|取り消|従わな)|(?:無視|忘れ)[^。\n]{0,10}(?:指示|命令|ルール)",
        ),
        r(
            ex,
            ("システム", "プロンプト", "指示"),
            r"(?:システムプロンプト|システム指示|システムメッセージ|初期指示|あなたの指示|隠された指示)[^。\n]{0,20}"
            r"(?:教えて|表示|出力|見せ|明かし|繰り返|書いて)",
        ),
        r(
            jb,
            ("制限", "制約", "フィルター", "検閲"),
            r"(?:制限|制約|フィルター|検閲|倫理)(?:なし|のない|を無視|を解除|を外)",
        ),
        r(rh, ("今からあなたは", "これからあなたは", "あなたは今"), r"(?:今から|これから|今や)あなたは"),
        # Korean
        r(
            ov,
            ("무시", "잊어"),
            r"(?:이전|위의|모든|앞의|기존)\s*(?:지시|명령|지침|규칙)[^.\n]{0,15}(?:무시|잊어)",
        ),
        r(
            ex,
            ("프롬프트", "지시"),
            r"(?:시스템 프롬프트|시스템 지시|초기 지시)[^.\n]{0,20}(?:보여|알려|출력|공개)",
        ),
        # Russian
        r(
            ov,
            ("инструкц", "указани", "правил", "команд", "директив", "ограничени"),
            r"(?:игнорируй|игнорируйте|проигнорируй|проигнорируйте|забудь|забудьте|не обращай внимания|отбр"
            r"ось|пропусти|"
            r"не следуй|не выполняй|отмени)[^.\n]{0,40}(?:инструкци|указани|правил|команд|директив|ограниче"
            r"ни)",
        ),
        r(
            ex,
            ("промпт", "инструкц", "подсказ", "сообщени"),
            r"(?:покажи|раскрой|выведи|повтори|напиши|скажи|сообщи|расскажи|перечисли)[^.\n]{0,40}(?:систем"
            r"н\w+ "
            r"(?:промпт|подсказк|инструкци|сообщени)|сво[иё] инструкци|твои инструкци|свой промпт|исходн\w+"
            r" инструкци)",
        ),
        r(
            jb,
            ("без ",),
            r"\bбез (?:каких-либо |всяких |любых )?(?:ограничений|фильтров|цензуры|правил|морали)",
        ),
        r(rh, ("теперь ты", "с этого момента"), r"(?:теперь ты|с этого момента ты)\b"),
        # Arabic, Hindi
        r(ov, ("تجاهل", "انس"), r"(?:تجاهل|انس|انسَ)\s.{0,40}(?:التعليمات|الأوامر|القواعد|الإرشادات)"),
        r(
            ov,
            ("निर्देश",),
            r"(?:पिछले|सभी|पूर्व)\s.{0,20}(?:निर्देशों|निर्देश)\s.{0,20}(?:अनदेखा|भूल|नजरअं"
            r"दाज)",
        ),
    )


I18N_RULES: tuple[Rule, ...] = _rules()
