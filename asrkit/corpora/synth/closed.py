"""synth closed-vocabulary text (`--text closed`): what the speakers say in a small-vocabulary task, as in
the classic connected-digit and command corpora — strings of numbers, times, dates and short
commands, from a word list of 30-80 words per language (en, de, fr, es, it) plus 17 number words.

A model can hear every word many times in a few hundred utterances, so word error rates of small
models mean something (the open vocabulary asks them to spell words heard once). For the same reason
the numbers are the ones every language says in one word (NUMBERS): number strings are read digit by
digit, as in the connected-digit tasks, hours, days and the volume are 2..12 and minutes whole tens.
(Grammar 1 said any number 0..99: German, which writes 21..99 as one word, then had 149 words, most
of them heard a few times, and 57% dev WER against 12-29% for the others; RESULTS.md.) Every sentence is a
function of the random generator alone; the grammar is fixed here, so a corpus is rebuilt only when
its options change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from asrkit.corpora.synth.text import number_to_words
from asrkit.errors import ConfigError

#: Bumped when the same options would give other sentences; stamped in a closed corpus's `.done`.
GRAMMAR_VERSION = 2
#: Every number the grammar says: the digits, 10..12 and the tens up to 50 (one word in every language).
NUMBERS = (*range(13), 20, 30, 40, 50)
MINUTES = (10, 20, 30, 40, 50)


@dataclass(frozen=True)
class ClosedGrammar:
    """The closed-vocabulary sentences of one language; `{h}`, `{m}`, `{d}`, `{n}` are numbers.

    Attributes:
        lang: the language code.
        number_prefix: said before some digit strings ("number").
        times: templates of a time: hour `{h}` (2..12) and minute `{m}` (10, 20, .. 50).
        weekdays, months: the date words.
        date: the template of a date: `{weekday}`, `{d}` (2..12) and `{month}`.
        objects: what commands act on, with their article.
        commands: templates of a command on `{o}` (an object).
        number_command: a command with a number `{n}` (0..12).
        please: said after some commands.
    """

    lang: str
    number_prefix: str
    times: tuple[str, ...]
    weekdays: tuple[str, ...]
    months: tuple[str, ...]
    date: str
    objects: tuple[str, ...]
    commands: tuple[str, ...]
    number_command: str
    please: str

    def words(self) -> set[str]:
        """Every word the grammar can say except the numbers."""
        texts = [self.number_prefix, *self.times, *self.weekdays, *self.months, self.date, *self.objects,
                 *self.commands, self.number_command, self.please]
        return {w for t in texts for w in t.split() if not w.startswith("{")}

    def numbers(self) -> set[str]:
        """The number words the grammar can say."""
        return {number_to_words(n, self.lang) for n in NUMBERS}

    def sentence(self, rng: np.random.Generator) -> str:
        """Draw one sentence: 3-5 digits (35%), a time (20%), a date (20%) or a command (25%)."""
        kind = rng.random()
        if kind < 0.35:
            digits = [self._number(rng, 0, 9) for _ in range(int(rng.integers(3, 6)))]
            prefix = [self.number_prefix] if rng.random() < 0.3 else []
            return " ".join(prefix + digits)
        if kind < 0.55:
            template = self.times[int(rng.integers(len(self.times)))]
            minute = MINUTES[int(rng.integers(len(MINUTES)))]
            return template.format(h=self._number(rng, 2, 12), m=number_to_words(minute, self.lang))
        if kind < 0.75:
            return self.date.format(weekday=self.weekdays[int(rng.integers(7))], d=self._number(rng, 2, 12),
                                    month=self.months[int(rng.integers(12))])
        if rng.random() < 0.2:
            text = self.number_command.format(n=self._number(rng, 0, 12))
        else:
            template = self.commands[int(rng.integers(len(self.commands)))]
            text = template.format(o=self.objects[int(rng.integers(len(self.objects)))])
        return f"{text} {self.please}" if rng.random() < 0.3 else text

    def _number(self, rng: np.random.Generator, low: int, high: int) -> str:
        return number_to_words(int(rng.integers(low, high + 1)), self.lang)


GRAMMARS: dict[str, ClosedGrammar] = {g.lang: g for g in (
    ClosedGrammar(
        lang="en", number_prefix="number",
        times=("at {h} {m}", "at half past {h}", "at quarter past {h}", "at quarter to {h}"),
        weekdays=("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"),
        months=("january", "february", "march", "april", "may", "june", "july", "august", "september",
                "october", "november", "december"),
        date="on {weekday} {month} {d}",
        objects=("the light", "the door", "the window", "the radio", "the music", "the heating",
                 "the television", "the alarm"),
        commands=("open {o}", "close {o}", "turn on {o}", "turn off {o}", "start {o}", "stop {o}"),
        number_command="set the volume to {n}", please="please"),
    ClosedGrammar(
        lang="de", number_prefix="nummer",
        times=("um {h} uhr {m}", "um halb {h}", "um viertel nach {h}", "um viertel vor {h}"),
        weekdays=("montag", "dienstag", "mittwoch", "donnerstag", "freitag", "samstag", "sonntag"),
        months=("januar", "februar", "märz", "april", "mai", "juni", "juli", "august", "september", "oktober",
                "november", "dezember"),
        date="am {weekday} den {d} {month}",
        objects=("das licht", "die tür", "das fenster", "das radio", "die musik", "die heizung",
                 "den fernseher", "den wecker"),
        commands=("öffne {o}", "schließe {o}", "mach {o} an", "mach {o} aus", "starte {o}", "stoppe {o}"),
        number_command="stelle die lautstärke auf {n}", please="bitte"),
    ClosedGrammar(
        lang="fr", number_prefix="numéro",
        times=("à {h} heures {m}", "à {h} heures et demie", "à {h} heures et quart",
               "à {h} heures moins le quart"),
        weekdays=("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"),
        months=("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
                "novembre", "décembre"),
        date="le {weekday} {d} {month}",
        objects=("la lumière", "la porte", "la fenêtre", "la radio", "la musique", "le chauffage",
                 "la télévision", "le réveil"),
        commands=("ouvre {o}", "ferme {o}", "allume {o}", "éteins {o}", "démarre {o}", "arrête {o}"),
        number_command="mets le volume à {n}", please="merci"),
    ClosedGrammar(
        lang="es", number_prefix="número",
        times=("a las {h} y {m}", "a las {h} y media", "a las {h} y cuarto", "a las {h} menos cuarto"),
        weekdays=("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"),
        months=("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre",
                "octubre", "noviembre", "diciembre"),
        date="el {weekday} {d} de {month}",
        objects=("la luz", "la puerta", "la ventana", "la radio", "la música", "la calefacción",
                 "la televisión", "la alarma"),
        commands=("abre {o}", "cierra {o}", "enciende {o}", "apaga {o}", "inicia {o}", "detén {o}"),
        number_command="pon el volumen en {n}", please="por favor"),
    ClosedGrammar(
        lang="it", number_prefix="numero",
        times=("alle {h} e {m}", "alle {h} e mezza", "alle {h} e un quarto", "alle {h} meno un quarto"),
        weekdays=("lunedì", "martedì", "mercoledì", "giovedì", "venerdì", "sabato", "domenica"),
        months=("gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "agosto", "settembre",
                "ottobre", "novembre", "dicembre"),
        date="{weekday} {d} {month}",
        objects=("la luce", "la porta", "la finestra", "la radio", "la musica", "il riscaldamento",
                 "la televisione", "la sveglia"),
        commands=("apri {o}", "chiudi {o}", "accendi {o}", "spegni {o}", "avvia {o}", "ferma {o}"),
        number_command="metti il volume a {n}", please="per favore"),
)}


def closed_grammar(lang: str) -> ClosedGrammar:
    """The closed-vocabulary grammar of `lang`.

    Raises:
        ConfigError: no grammar for the language.
    """
    grammar = GRAMMARS.get(lang.split("-")[0])
    if grammar is None:
        raise ConfigError(f"--text closed: no closed-vocabulary word list for language '{lang}' "
                          f"(have: {', '.join(GRAMMARS)})")
    return grammar if grammar.lang == lang else ClosedGrammar(**{**grammar.__dict__, "lang": lang})
