#!/usr/bin/env python3
"""Generate the pulso demo feed for the fictional company "Acme" (deterministic, seed 20261114).

Run from the repository root (needs pyarrow; generated with pyarrow 17.0.0, which works with
the numpy==1.26.4 pin in models/train/requirements.txt — pyarrow >= 18 wants numpy 2):

    .venv/bin/python scripts/make_demo_data.py

Writes pipelines/demo/ (survey CSV, helpdesk JSONL, partner e-mail CSV, social mentions JSONL,
reviews Parquet, people.csv roster, EXPECTED.json) and pipelines/README.md.
pipelines/demo.toml is hand-written and committed next to it.

Every broken record is planted on purpose and listed (file, line/row, reason) in EXPECTED.json
and pipelines/README.md so the Rust integration tests can check the rejects path.
"""

import csv
import io
import json
import os
import random
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pyarrow.parquet as pq

SEED = 20261114
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PIPE = os.path.join(ROOT, "pipelines")
DEMO = os.path.join(PIPE, "demo")

rng = random.Random(SEED)
START = datetime(2026, 11, 1, tzinfo=timezone.utc)
SPIKE_DAY = datetime(2026, 11, 14, tzinfo=timezone.utc)
DAYS = 14

# Planted broken records: source -> list of {"file", "line" or "row", "reason", "what"}
BROKEN = {}
TOTALS = {}


def plant(source, file, where, reason, what):
    entry = {"file": file, "reason": reason, "what": what}
    entry.update(where)
    BROKEN.setdefault(source, []).append(entry)


def pick(xs):
    return rng.choice(xs)


def maybe(p):
    return rng.random() < p


def rand_time(day, lo_h=7, hi_h=23):
    """A UTC datetime on START+day between lo_h and hi_h hours."""
    base = START + timedelta(days=day)
    secs = rng.randint(lo_h * 3600, hi_h * 3600 - 1)
    return base + timedelta(seconds=secs)


class Unique:
    """Draws texts from a generator until one not seen before (avoids verbatim repeats)."""

    def __init__(self):
        self.seen = set()

    def __call__(self, gen, tries=60):
        for _ in range(tries):
            t = gen()
            if t not in self.seen:
                self.seen.add(t)
                return t
        self.seen.add(t)
        return t


uniq = Unique()

# ======================================================================================
# People
# ======================================================================================
FIRST = [
    "ana", "bruno", "carla", "diego", "eduarda", "felipe", "gabriela", "henrique", "isabela", "joao",
    "karina", "lucas", "mariana", "nicolas", "olivia", "paulo", "rafaela", "sergio", "tatiana", "vinicius",
    "beatriz", "caio", "daniela", "fernando", "giovana", "igor", "juliana", "leonardo", "manuela", "otavio",
    "patricia", "renato", "sofia", "thiago", "valeria", "camila", "andres", "lucia", "mateo", "valentina",
    "santiago", "ximena", "emily", "michael", "sarah", "david", "jessica", "kevin", "laura", "ricardo",
    "jorge", "paola", "alejandro", "fernanda", "rodrigo", "natalia", "gustavo", "helena", "marcos", "yara",
]
LAST = [
    "silva", "souza", "oliveira", "santos", "pereira", "costa", "rodrigues", "almeida", "nascimento", "lima",
    "araujo", "fernandes", "carvalho", "gomes", "martins", "rocha", "ribeiro", "barbosa", "garcia", "lopez",
    "martinez", "hernandez", "gonzalez", "ramirez", "torres", "flores", "morales", "smith", "johnson", "brown",
    "miller", "davis", "moreira", "teixeira", "cardoso", "mendes", "castro", "vargas", "rojas", "pinto",
]

used_emails = set()


def make_email(domain):
    while True:
        e = f"{pick(FIRST)}.{pick(LAST)}@{domain}"
        if e not in used_emails:
            used_emails.add(e)
            return e


DEPTS = {
    # dept: (respondents, locale weights)
    "Sales": 16,
    "Marketing": 12,
    "IT": 14,
    "HR": 8,
    "Operations": 15,
    "Finance": 5,  # exactly min_group_size
    "Logistics": 14,
    "Legal": 3,  # below min_group_size: must be suppressed in HR aggregates
}

EMPLOYEES = {}  # dept -> [(email, lang)]
for dept, n in DEPTS.items():
    people = []
    for i in range(n):
        lang = rng.choices(["pt", "es", "en"], weights=[6, 3, 2])[0]
        domain = "acme.com.br" if lang == "pt" and not maybe(0.15) else "acme.com"
        people.append((make_email(domain), lang))
    EMPLOYEES[dept] = people

# Contractors / outsourced staff (not on acme domains) and investors, listed in the roster.
CONTRACTORS = [
    ("rafael.moura.dev@mail.example", "contractor", "IT", "pt"),
    ("lu.fernandez.freelance@correo.example", "contractor", "Marketing", "es"),
    ("jk.tanaka@devhouse.example", "contractor", "IT", "en"),
    ("suporte.noturno@talentos-terceirizados.example", "outsourced", "Operations", "pt"),
    ("marcia.lopes@talentos-terceirizados.example", "outsourced", "Logistics", "pt"),
    ("pedro.alves@talentos-terceirizados.example", "outsourced", "Logistics", "pt"),
]
INVESTORS = [
    ("relacoes@fundo-andes.example", "investor", "", "pt"),
    ("m.whitfield@harborview-capital.example", "investor", "", "en"),
]
# A steelworks.example address that is really a joint-venture partner: the roster overrides the
# supplier domain rule.
PARTNER_OVERRIDE = ("jv.projetos@steelworks.example", "partner", "", "pt")

# ======================================================================================
# 1. Employee survey (CSV)
# ======================================================================================
SURVEY = {
    "pt": {
        "workload": {
            "neg": [
                "A carga de trabalho está insustentável, faço hora extra quase todo dia e ninguém percebe.",
                "Desde a saída de dois colegas eu faço o trabalho de três pessoas, estou exausta.",
                "Metas subiram de novo e a equipe continua do mesmo tamanho, não dá.",
                "Não tenho tempo nem para almoçar direito, o volume de pedidos dobrou.",
            ],
            "neu": [
                "O volume de trabalho varia muito, tem semanas tranquilas e outras bem puxadas.",
                "A carga é alta no fechamento do mês, no resto do tempo é razoável.",
            ],
            "pos": [
                "Depois da redistribuição das tarefas a carga ficou bem mais equilibrada.",
                "Consigo cumprir minhas entregas sem hora extra, o planejamento melhorou muito.",
            ],
        },
        "pay": {
            "neg": [
                "O salário está abaixo do mercado e o reajuste deste ano nem cobriu a inflação.",
                "Cortaram o vale-alimentação e ninguém explicou o motivo, muito desanimador.",
                "A PLR prometida não foi paga e a comunicação sobre isso foi péssima.",
            ],
            "neu": [
                "Os benefícios são ok, mas o plano de saúde poderia ter mais cobertura.",
                "Salário dentro da média, nada de especial.",
            ],
            "pos": [
                "Gostei muito do novo plano odontológico e do auxílio home office.",
                "O reajuste veio acima do esperado, obrigado pela transparência.",
            ],
        },
        "management": {
            "neg": [
                "Minha liderança não dá feedback e só aparece para cobrar resultado.",
                "O gestor muda as prioridades toda semana e a gente perde o trabalho feito.",
                "Falta respeito da coordenação, levantam a voz em reunião na frente de todos.",
            ],
            "neu": [
                "A gestão é correta, mas poderia envolver mais o time nas decisões.",
            ],
            "pos": [
                "Minha gestora é excelente, escuta a equipe e defende a gente.",
                "Tenho um líder que apoia meu desenvolvimento, isso faz toda a diferença.",
            ],
        },
        "recognition": {
            "neg": [
                "Entreguei o projeto no prazo e nem um obrigado, o reconhecimento aqui é zero.",
                "Só quem aparece nas reuniões é lembrado, o trabalho de bastidor é invisível.",
            ],
            "neu": ["O programa de reconhecimento existe, mas pouca gente usa."],
            "pos": ["Adorei ser reconhecida no encontro trimestral, me senti valorizada."],
        },
        "career": {
            "neg": [
                "Não vejo plano de carreira, estou no mesmo cargo há quatro anos.",
                "As promoções parecem decididas por afinidade, não por desempenho.",
            ],
            "neu": ["Os treinamentos online são úteis, mas falta tempo na agenda para fazer."],
            "pos": [
                "O programa de mentoria foi ótimo, aprendi muito com a minha mentora.",
                "Fiz o curso de liderança pago pela empresa e já estou aplicando no dia a dia.",
            ],
        },
        "tools": {
            "neg": [
                "O notebook é lento demais, perco uma hora por dia esperando o sistema abrir.",
                "A VPN cai toda hora e o ERP trava no fechamento, é frustrante.",
            ],
            "neu": ["As ferramentas atendem, mas a migração para o novo ERP está confusa."],
            "pos": ["O novo sistema de chamados ficou muito mais simples, parabéns à TI."],
        },
        "workplace": {
            "neg": ["O ar-condicionado do galpão não funciona há semanas e o calor está insuportável."],
            "neu": ["O escritório é bom, mas o estacionamento é pequeno."],
            "pos": ["O novo escritório ficou lindo e o modelo híbrido funciona muito bem para mim."],
        },
        "communication": {
            "neg": ["A comunicação interna é péssima, fico sabendo das mudanças pela imprensa."],
            "neu": ["As reuniões gerais ajudam, mas poderiam ser mais curtas."],
            "pos": ["A comunicação da diretoria melhorou muito, agora entendemos as decisões."],
        },
        "leave": [
            "Sinceramente, vou pedir demissão se nada mudar até o fim do ano.",
            "Já estou conversando com outras empresas, não aguento mais a pressão daqui.",
            "Estou atualizando meu currículo, aqui não tenho futuro.",
        ],
    },
    "es": {
        "workload": {
            "neg": [
                "La carga de trabajo es enorme y seguimos con la mitad del equipo.",
                "Trabajo todos los fines de semana para cerrar los pedidos, no es sostenible.",
            ],
            "neu": ["La carga depende de la temporada, ahora con la campaña está más pesada."],
            "pos": ["Con la nueva herramienta de planificación la carga quedó mucho más equilibrada."],
        },
        "pay": {
            "neg": ["El sueldo no alcanza y el bono se pagó tarde otra vez."],
            "neu": ["Los beneficios están bien, aunque el seguro médico podría mejorar."],
            "pos": ["Me gustó mucho el aumento y el nuevo bono por desempeño."],
        },
        "management": {
            "neg": [
                "Mi jefe no escucha a nadie y cambia las prioridades cada lunes.",
                "No recibo retroalimentación desde hace meses, no sé si voy bien o mal.",
            ],
            "neu": ["La gestión es correcta, pero la comunicación con otras áreas es lenta."],
            "pos": ["Mi jefa es genial, nos apoya y reconoce el esfuerzo del equipo."],
        },
        "recognition": {
            "neg": ["Nadie reconoce el trabajo extra que hicimos en la migración."],
            "neu": ["El reconocimiento existe, pero llega tarde."],
            "pos": ["Me encantó el reconocimiento público al equipo de logística."],
        },
        "career": {
            "neg": ["No hay oportunidades de crecer, las vacantes se llenan con gente de afuera."],
            "neu": ["La capacitación es útil, aunque casi toda está en portugués."],
            "pos": ["El programa de formación en datos fue excelente, aprendí muchísimo."],
        },
        "tools": {
            "neg": ["La laptop es muy lenta y el sistema de tickets se cae todo el tiempo."],
            "neu": ["Las herramientas funcionan, pero el acceso remoto es complicado."],
            "pos": ["El cambio a la nueva plataforma de colaboración fue un acierto."],
        },
        "workplace": {
            "neg": ["La oficina de Bogotá está llena y no hay dónde sentarse los martes."],
            "neu": ["La oficina está bien ubicada, aunque el comedor es pequeño."],
            "pos": ["El ambiente del equipo es lo mejor de trabajar aquí."],
        },
        "communication": {
            "neg": ["Nos enteramos de los cambios por rumores, la comunicación interna falla mucho."],
            "neu": ["Las reuniones mensuales son informativas pero muy largas."],
            "pos": ["Ahora la dirección explica las decisiones, se nota la mejora."],
        },
        "leave": [
            "Estoy buscando otro trabajo, aquí no veo futuro.",
            "Si no cambia nada, renuncio en enero.",
        ],
    },
    "en": {
        "workload": {
            "neg": [
                "The workload is not sustainable, I've been working late every night this month.",
                "We lost two people and nobody was backfilled, everyone is burning out.",
            ],
            "neu": ["Workload is heavy around month-end but manageable otherwise."],
            "pos": ["Since we reprioritized the roadmap the workload feels a lot more reasonable."],
        },
        "pay": {
            "neg": ["Pay is well below market and the raise this year was a joke."],
            "neu": ["Benefits are fine, nothing special."],
            "pos": ["Really happy with the new parental leave policy, thank you."],
        },
        "management": {
            "neg": [
                "My manager never gives feedback and takes credit for the team's work.",
                "Leadership keeps changing direction and nobody explains why.",
            ],
            "neu": ["Management is okay, though decisions could be communicated earlier."],
            "pos": ["My manager is supportive and genuinely cares about my growth."],
        },
        "recognition": {
            "neg": ["Great, another all-hands where only sales gets thanked. Love that for us."],
            "neu": ["Recognition happens, just not very consistently."],
            "pos": ["Getting the quarterly award for the warehouse project meant a lot to me."],
        },
        "career": {
            "neg": ["There is no clear career path, promotions seem random."],
            "neu": ["Training catalog is decent but hard to find time for it."],
            "pos": ["The mentoring program has been fantastic for my career."],
        },
        "tools": {
            "neg": ["The laptop is painfully slow and the VPN drops during every call."],
            "neu": ["Tools are adequate, the ERP migration is still a bit confusing."],
            "pos": ["The new ticketing tool is so much better, kudos to IT."],
        },
        "workplace": {
            "neg": ["The office is too noisy to focus and there are never enough meeting rooms."],
            "neu": ["Hybrid schedule works, the commute on office days is long."],
            "pos": ["I love the hybrid setup and the team culture here."],
        },
        "communication": {
            "neg": ["I found out about the reorg from a LinkedIn post. Internal comms are broken."],
            "neu": ["Monthly town halls are useful but run long."],
            "pos": ["Communication from leadership has improved a lot this quarter."],
        },
        "leave": [
            "I'm looking for a new job, honestly. Nothing here is going to change.",
            "Updating my resume this weekend, management never listens.",
            "I'm actively interviewing elsewhere, the burnout isn't worth it.",
        ],
    },
}
SURVEY_EXTRA = {
    "pt": {
        "neg": ["Infelizmente", "Pra ser sincera,", "De novo:", "Triste dizer, mas"],
        "pos": ["Sinceramente,", "Quero registrar:", "Feliz em dizer que"],
        "tail_neg": ["", "", " Espero que alguém leia isso.", " Já falei isso na pesquisa passada."],
        "tail_pos": ["", "", " Obrigado!", " Continuem assim."],
    },
    "es": {
        "neg": ["Lamentablemente,", "Otra vez:", "Para ser honesto,"],
        "pos": ["Sinceramente,", "Quiero destacar que"],
        "tail_neg": ["", "", " Ojalá alguien lea esto.", " Ya lo dije en la encuesta anterior."],
        "tail_pos": ["", "", " ¡Gracias!", " Sigan así."],
    },
    "en": {
        "neg": ["Honestly,", "Again:", "Not to complain, but"],
        "pos": ["Honestly,", "Just want to say"],
        "tail_neg": ["", "", " Hoping someone actually reads this.", " Same as last survey."],
        "tail_pos": ["", "", " Thanks!", " Keep it up."],
    },
}


def lower_first(s):
    return s[0].lower() + s[1:] if s and s[0].isupper() and not s.startswith("I ") and not s.startswith("I'") else s


def survey_comment(lang, topic, sent):
    base = pick(SURVEY[lang][topic][sent])
    ex = SURVEY_EXTRA[lang]
    if sent == "neg":
        if maybe(0.3):
            base = f"{pick(ex['neg'])} {lower_first(base)}"
        base += pick(ex["tail_neg"])
    elif sent == "pos":
        if maybe(0.25):
            base = f"{pick(ex['pos'])} {lower_first(base)}"
        base += pick(ex["tail_pos"])
    return base


def make_survey():
    file = "survey_2026-11.csv"
    header = ["response_id", "submitted_at", "email", "dept", "comment", "enps"]
    rows = []
    topics = list(SURVEY["pt"].keys())
    topics.remove("leave")
    n = 0
    offsets = {"pt": [-3], "es": [-5, -6, -3], "en": [-5, 0, -8]}
    leavers = 0
    for dept, people in EMPLOYEES.items():
        for email, lang in people:
            n += 1
            rid = f"SRV-{n:04d}"
            day = rng.randrange(DAYS)
            t = rand_time(day, 10, 23)
            off = pick(offsets[lang])
            local = t.astimezone(timezone(timedelta(hours=off)))
            ts = local.isoformat(timespec="seconds")
            if ts.endswith("+00:00") and maybe(0.5):
                ts = ts[:-6] + "Z"
            if leavers < 8 and maybe(0.11):
                comment = pick(SURVEY[lang]["leave"])
                if maybe(0.6):
                    comment = survey_comment(lang, pick(["workload", "management", "pay", "career"]), "neg") + " " + comment
                enps = rng.randint(0, 3)
                leavers += 1
            else:
                sent = rng.choices(["neg", "neu", "pos"], weights=[4, 3, 4])[0]
                comment = uniq(lambda: survey_comment(lang, pick(topics), sent))
                if maybe(0.12):  # a second topic in the same comment
                    comment += " " + survey_comment(lang, pick(topics), pick(["neg", "neu", "pos"]))
                enps = {"neg": rng.randint(0, 6), "neu": rng.randint(6, 8), "pos": rng.randint(8, 10)}[sent]
            rows.append((t, [rid, ts, email, dept, comment, str(enps)]))
    rows.sort(key=lambda tr: tr[0])
    rows = [r for _, r in rows]
    for k, r in enumerate(rows, start=1):
        r[0] = f"SRV-{k:04d}"
    # --- broken records (inserted at fixed positions, each with exactly one problem) ---
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(header)
    lines = [None]  # 1-based line numbers; header is line 1
    body = []
    for r in rows:
        s = io.StringIO()
        csv.writer(s, lineterminator="\n").writerow(r)
        body.append(("ok", s.getvalue()))
    # duplicate: the same response exported twice (identical row)
    dup_src = body[20][1]
    body.insert(41, ("duplicate", dup_src))
    # malformed: unquoted comment with commas -> too many fields
    mal_email, _ = EMPLOYEES["Operations"][3]
    body.insert(
        57,
        (
            "malformed_row",
            f"SRV-9001,2026-11-06T16:40:00-03:00,{mal_email},Operations,O turno da noite está sem supervisor, sem EPI e sem pausa,2\n",
        ),
    )
    # empty comment (only whitespace)
    e_email, _ = EMPLOYEES["Sales"][2]
    body.insert(73, ("empty_text", f"SRV-9002,2026-11-08T09:15:00-03:00,{e_email},Sales,\"   \",7\n"))
    # bad timestamp (month 13)
    b_email, _ = EMPLOYEES["Marketing"][1]
    body.insert(
        88,
        (
            "bad_timestamp",
            f"SRV-9003,2026-13-45T10:00:00-03:00,{b_email},Marketing,A campanha de fim de ano está bem organizada.,8\n",
        ),
    )
    text = "".join(l for _, l in body)
    with open(os.path.join(DEMO, file), "w", encoding="utf-8", newline="") as f:
        f.write(out.getvalue() + text)
    line = 1
    for kind, l in body:
        line += 1
        if kind != "ok":
            plant("employee_survey", file, {"line": line}, kind, l.strip()[:80])
    TOTALS["employee_survey"] = len(body)


# ======================================================================================
# 2. Helpdesk tickets (JSONL)
# ======================================================================================
HELPDESK = {
    "IT": {
        "pt": [
            ("neg", "A VPN cai a cada 10 minutos desde a atualização de ontem, não consigo trabalhar de casa."),
            ("neg", "Terceiro chamado sobre o mesmo problema: o notebook reinicia sozinho. Ninguém resolve."),
            ("neg", "O ERP travou no meio do faturamento e perdi tudo o que tinha digitado."),
            ("neu", "Preciso de acesso à pasta compartilhada do time de logística, por favor."),
            ("neu", "Solicito a troca do meu monitor, a tela está com listras verticais."),
            ("neu", "Pedido de reset de senha do e-mail, a conta foi bloqueada após tentativas."),
            ("pos", "Obrigado pelo atendimento rápido, o técnico resolveu o problema da impressora em minutos."),
            ("pos", "Chamado pode ser encerrado, o acesso ao sistema já está funcionando. Valeu!"),
        ],
        "es": [
            ("neg", "La laptop no enciende desde el lunes y nadie me contesta, ya van cuatro días."),
            ("neu", "Necesito instalar el cliente de VPN en el equipo nuevo."),
            ("pos", "Gracias por resolver lo del correo tan rápido, todo funciona perfecto."),
        ],
        "en": [
            ("neg", "The shared drive has been read-only all morning and the release is today. Please escalate."),
            ("neu", "Requesting a second monitor for the new analyst starting next week."),
            ("pos", "Thanks for the quick fix on the badge reader, all good now."),
        ],
    },
    "HR": {
        "pt": [
            ("neg", "Meu holerite veio com desconto errado pelo segundo mês seguido, preciso de uma resposta."),
            ("neg", "As férias aprovadas foram canceladas sem aviso, isso é um absurdo."),
            ("neu", "Gostaria de saber como incluir meu filho como dependente no plano de saúde."),
            ("neu", "Qual o prazo para entregar o atestado médico no sistema?"),
            ("pos", "Agradeço ao RH pela ajuda com a documentação da licença, foi tudo muito tranquilo."),
        ],
        "es": [
            ("neg", "No recibí el pago de horas extra de octubre, ¿qué pasó?"),
            ("neu", "¿Cómo solicito el certificado laboral para un trámite bancario?"),
        ],
        "en": [
            ("neg", "My benefits enrollment was lost again, this is the second time I'm submitting it."),
            ("neu", "How do I update my bank details for payroll?"),
        ],
    },
}


def make_helpdesk():
    file = "helpdesk_tickets.jsonl"
    lines = []  # (kind, bytes)
    # requesters: employees (by domain), contractors/outsourced (roster), 2 external customers (default)
    staff = [(e, l, d) for d, ps in EMPLOYEES.items() for e, l in ps]
    contractors = [(e, l, d) for e, _, d, l in CONTRACTORS]
    n = 0
    for i in range(44):
        if i % 7 == 3:
            email, lang, dept = contractors[(i // 7) % len(contractors)]
        else:
            email, lang, dept = pick(staff)
        queue = "HR" if maybe(0.35) else "IT"
        opts = HELPDESK[queue].get(lang) or HELPDESK[queue]["pt"]
        _, body = pick(opts)
        if maybe(0.3):
            body += pick({"pt": [" Urgente.", " Obrigado.", " Att."], "es": [" Gracias.", " Urgente."], "en": [" Thanks.", " Urgent."]}[lang])
        n += 1
        t = rand_time(rng.randrange(DAYS), 8, 21)
        rec = {
            "ticket_id": f"HD-{4100 + n}",
            "created": t.strftime("%Y-%m-%d %H:%M:%S"),
            "requester": {"email": email, "department": dept},
            "queue": queue,
            "body": body,
        }
        lines.append(("ok", json.dumps(rec, ensure_ascii=False).encode()))
    # an external customer who wrote to the helpdesk by mistake -> routed external by default
    for who, body in [
        ("cliente.furiosa@email.example", "Comprei uma geladeira e ninguém me dá retorno sobre a entrega, vocês são a central de atendimento?"),
        ("bob.carter@webmail.example", "Hi, is this the support line for AcmePay? My card was charged twice."),
    ]:
        n += 1
        rec = {
            "ticket_id": f"HD-{4100 + n}",
            "created": rand_time(rng.randrange(DAYS)).strftime("%Y-%m-%d %H:%M:%S"),
            "requester": {"email": who, "department": None},
            "queue": "IT",
            "body": body,
        }
        lines.insert(rng.randrange(5, len(lines)), ("ok", json.dumps(rec, ensure_ascii=False).encode()))
    email, _, dept = staff[5][0], staff[5][1], staff[5][2]
    # invalid UTF-8: a body exported as Latin-1 by an old mail gateway
    bad = (
        '{"ticket_id": "HD-4901", "created": "2026-11-07 10:02:00", "requester": {"email": "'
        + email
        + '", "department": "'
        + dept
        + '"}, "queue": "IT", "body": "'
    ).encode() + "Impressora do 3º andar sem conexão, manutenção urgente".encode("latin-1") + b'"}'
    lines.insert(9, ("invalid_utf8", bad))
    # missing text field: no "body" key
    rec = {"ticket_id": "HD-4902", "created": "2026-11-09 14:30:00", "requester": {"email": staff[12][0], "department": staff[12][2]}, "queue": "HR"}
    lines.insert(18, ("missing_field:text", json.dumps(rec, ensure_ascii=False).encode()))
    # bad timestamp
    rec = {
        "ticket_id": "HD-4903",
        "created": "yesterday",
        "requester": {"email": staff[30][0], "department": staff[30][2]},
        "queue": "IT",
        "body": "O Teams não abre no computador da recepção.",
    }
    lines.insert(27, ("bad_timestamp", json.dumps(rec, ensure_ascii=False).encode()))
    # not valid JSON (truncated line)
    lines.insert(36, ("malformed_row", b'{"ticket_id": "HD-4904", "created": "2026-11-12 08:45:00", "requester": {"email": "'
                      + staff[40][0].encode() + b'"}, "queue": "IT", "body": "Mouse sem fio parou de funcionar'))
    with open(os.path.join(DEMO, file), "wb") as f:
        for _, b in lines:
            f.write(b + b"\n")
    for i, (kind, b) in enumerate(lines, start=1):
        if kind != "ok":
            plant("helpdesk", file, {"line": i}, kind, b.decode("utf-8", "replace")[:80])
    TOTALS["helpdesk"] = len(lines)


# ======================================================================================
# 3. Partner / supplier / investor e-mails (CSV)
# ======================================================================================
PARTNER_MAILS = [
    # (sender kind, subject, body, day or None)
    ("supplier", "Fatura 8841 em atraso", "Prezados, a fatura 8841 venceu há 35 dias e ainda não recebemos o pagamento. Precisamos regularizar para liberar os próximos lotes de aço."),
    ("supplier", "Programação de entregas de novembro", "Segue a programação de entregas das bobinas para novembro. Qualquer ajuste, favor avisar com 48 horas de antecedência."),
    ("supplier", "Reajuste de preços", "Informamos que, devido ao aumento do minério, os preços das chapas terão reajuste de 6% a partir de dezembro."),
    ("supplier", "Obrigado pela parceria", "Agradecemos a confiança da Acme neste ano. A visita técnica à fábrica foi excelente e já aplicamos as melhorias sugeridas."),
    ("supplier", "Pedido de compra sem aprovação", "O pedido de compra 55102 está parado no portal há uma semana aguardando aprovação. Assim não conseguimos cumprir o prazo."),
    ("supplier", "Late payment - PO 55087", "Hello, payment for PO 55087 is now 40 days overdue. Our finance team has escalated this and may put the account on hold."),
    ("supplier", "Certificado de qualidade", "Anexamos o certificado de qualidade do lote 2026-44, conforme solicitado pela engenharia."),
    ("supplier", "Portal de fornecedores", "O novo portal de fornecedores da Acme está muito mais fácil de usar, parabéns à equipe de compras."),
    ("partner", "Capacidade para a campanha de 14/11", "Atenção: o volume previsto para a campanha de 14/11 é 3 vezes a nossa capacidade contratada nas rotas Sul e Sudeste. Precisamos alinhar urgentemente."),
    ("partner", "SLA de outubro", "Segue o relatório de SLA de outubro: 96,2% das entregas no prazo, acima da meta de 95%."),
    ("partner", "Ocorrências na rota Nordeste", "Tivemos 14 ocorrências de avaria na rota Nordeste por falha de embalagem. Sugerimos revisar o padrão de caixas."),
    ("partner", "Colapso no CD de Cajamar", "O centro de distribuição de Cajamar está com mais de 20 mil volumes parados desde ontem. As entregas da promoção vão atrasar pelo menos 5 dias."),
    ("partner", "Retrasos en Bogotá", "Hola equipo, las entregas en Bogotá están con retraso de dos días por el paro de transportistas. Les mantendremos informados."),
    ("partner", "Gracias por la reunión", "Muchas gracias por la reunión de planificación, quedamos muy contentos con los nuevos acuerdos de volumen."),
    ("partner", "Weekly ops summary", "Weekly summary: on-time delivery 91%, down from 95% last week due to the holiday peak. Two trucks were added to the São Paulo route."),
    ("partner", "Integração de rastreamento", "A integração de rastreamento via API está funcionando, os clientes já recebem o status em tempo real."),
    ("partner_override", "Projeto joint venture - cronograma", "Segue o cronograma revisado da joint venture de estruturas metálicas. Estamos animados com o início das obras."),
    ("partner_override", "JV: atraso na licença ambiental", "A licença ambiental da joint venture atrasou e o início das obras deve ficar para fevereiro. Precisamos de uma reunião com a diretoria."),
    ("investor", "Resultados do 3º trimestre", "Parabéns pelos resultados do trimestre, o crescimento da AcmePay superou nossas expectativas."),
    ("investor", "Questions about logistics costs", "The board would like more detail on rising logistics costs and the delivery problems reported in the press this week."),
    ("investor", "Reunião com investidores", "Confirmamos presença na reunião de 20/11. Gostaríamos de discutir o plano para reduzir as reclamações de entrega."),
    ("investor", "Dividend policy", "Could you share the updated dividend policy ahead of the December meeting? Thanks in advance."),
]


def make_partner_emails():
    file = "partner_emails.csv"
    supplier_people = ["comercial@steelworks.example", "financeiro@steelworks.example", "qualidade@steelworks.example", "k.weber@steelworks.example"]
    partner_people = ["operacoes@logistica-parceira.example", "sla@logistica-parceira.example", "bogota@logistica-parceira.example", "r.mendes@logistica-parceira.example"]
    investors = [e for e, *_ in INVESTORS]
    rows = []
    for i, (kind, subject, body) in enumerate(PARTNER_MAILS):
        if kind == "supplier":
            frm = pick(supplier_people)
        elif kind == "partner":
            frm = pick(partner_people)
        elif kind == "partner_override":
            frm = PARTNER_OVERRIDE[0]
        else:
            frm = investors[i % len(investors)]
        if maybe(0.4) and kind != "partner_override":
            frm = f"{frm.split('@')[0].replace('.', ' ').title()} <{frm}>"
        if "14/11" in subject or "Cajamar" in subject:
            day = 13
        elif "press this week" in body:
            day = 13
        else:
            day = rng.randrange(DAYS - 1)
        t = rand_time(day, 11, 22)
        rows.append(("ok", [f"<{20261100 + i}.{rng.randint(1000, 9999)}@mail.example>", str(int(t.timestamp())), frm, subject, body]))
    rng.shuffle(rows)
    # duplicate: the same message delivered twice by the mail gateway
    rows.insert(12, ("duplicate", list(rows[4][1])))
    # empty body
    rows.insert(
        16,
        ("empty_text", [f"<20261190.7777@mail.example>", str(int(rand_time(6).timestamp())), "comercial@steelworks.example", "RE: Programação de entregas", ""]),
    )
    header = ["message_id", "received_at", "from", "subject", "body"]
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(header)
    line = 1
    for kind, r in rows:
        w.writerow(r)
        line += 1  # bodies have no newlines: one record per line
        if kind != "ok":
            plant("partner_emails", file, {"line": line}, kind, ",".join(r)[:80])
    with open(os.path.join(DEMO, file), "w", encoding="utf-8", newline="") as f:
        f.write(out.getvalue())
    TOTALS["partner_emails"] = len(rows)


# ======================================================================================
# 4. Social mentions (JSONL)
# ======================================================================================
M = {
    "pt": {
        "delivery": {
            "neg": [
                "{b} meu pedido está parado no centro de distribuição há {n} dias",
                "comprei na {b} dia {d} e até agora nada da entrega",
                "rastreamento da {b} não atualiza desde {dow}, alguém mais?",
                "prazo de entrega da {b} é pura ficção",
                "a {b} cancelou minha entrega sem avisar e ainda quer que eu espere mais {n} dias",
                "o entregador da {b} marcou 'cliente ausente' e eu estava em casa o dia todo",
            ],
            "neu": [
                "alguém sabe quanto tempo a {b} está levando pra entregar em {city}?",
                "pedido da {b} saiu para entrega, vamos ver",
            ],
            "pos": [
                "chegou antes do prazo! {b} mandou bem dessa vez",
                "entrega super rápida da {b}, pedi ontem e já chegou em {city}",
            ],
            "sarc": [
                "amo quando a {b} promete entrega em 2 dias e entrega em {n}",
                "parabéns {b}, mais uma semana esperando a encomenda, que eficiência",
            ],
        },
        "app": {
            "neg": ["o app da {b} trava toda vez que tento finalizar a compra", "não consigo nem fazer login no app da {b} hoje"],
            "neu": ["atualizaram o app da {b}, mudou o layout do carrinho"],
            "pos": ["o novo app da {b} ficou muito bom, checkout em dois toques", "gostei da nova busca do app da {b}"],
            "sarc": ["adoro o app da {b}, principalmente quando ele fecha sozinho no pagamento"],
        },
        "payment": {
            "neg": ["a {b} cobrou duas vezes no meu cartão e ninguém resolve", "pix pela {b} não caiu até agora"],
            "neu": ["alguém usa {b}? vale a pena pra parcelar?"],
            "pos": ["pagar com {b} é muito prático, o cashback caiu na hora", "{b} aprovou meu limite rapidinho"],
            "sarc": [],
        },
        "support": {
            "neg": ["o SAC da {b} me deixou {n} minutos esperando e desligou", "chat da {b} só responde com mensagem automática"],
            "neu": ["abri um chamado com a {b}, aguardando retorno"],
            "pos": ["atendimento da {b} resolveu meu problema em 5 minutos, nota 10", "a atendente da {b} foi super atenciosa"],
            "sarc": [],
        },
        "product": {
            "neg": ["o produto da {b} veio com defeito e a troca é uma burocracia", "não recomendo a {b}, qualidade caiu muito"],
            "neu": ["comprei uma air fryer na {b}, depois conto como foi"],
            "pos": ["a qualidade dos produtos da {b} continua ótima", "não me arrependo de ter comprado na {b}"],
            "sarc": [],
        },
    },
    "es": {
        "delivery": {
            "neg": [
                "mi pedido de {b} lleva {n} días sin moverse",
                "{b} otra vez sin entregar, compré el {d} y nada",
                "el seguimiento de {b} dice 'en camino' desde el {dow}",
                "no vuelvo a comprar en {b}, el envío es un desastre",
            ],
            "neu": ["¿alguien sabe cuánto tarda {b} en enviar a {city}?"],
            "pos": ["{b} me entregó en un día, impresionante", "llegó perfecto y antes de tiempo, gracias {b}"],
            "sarc": ["qué maravilla {b}, otra semana esperando mi paquete, justo lo que necesitaba"],
        },
        "app": {
            "neg": ["la app de {b} se cierra cuando intento pagar"],
            "neu": ["nueva versión de la app de {b}, cambiaron el menú"],
            "pos": ["la app de {b} ahora es rapidísima"],
            "sarc": [],
        },
        "payment": {
            "neg": ["{b} me cobró dos veces y el reembolso no llega"],
            "neu": ["¿{b} funciona con tarjetas de otros bancos?"],
            "pos": ["pagar con {b} es facilísimo, me encanta"],
            "sarc": [],
        },
        "support": {
            "neg": ["el soporte de {b} no contesta hace {n} días"],
            "neu": ["escribí al soporte de {b}, espero respuesta"],
            "pos": ["excelente atención de {b}, resolvieron todo por chat"],
            "sarc": [],
        },
        "product": {
            "neg": ["el producto de {b} llegó roto"],
            "neu": ["compré una licuadora en {b}, ya les cuento"],
            "pos": ["la calidad de {b} sigue siendo muy buena"],
            "sarc": [],
        },
    },
    "en": {
        "delivery": {
            "neg": [
                "my {b} order has been stuck 'in transit' for {n} days",
                "ordered from {b} on the {d}th and still nothing",
                "{b} delivery estimates are pure fiction at this point",
                "{b} marked my package as delivered. it was not delivered.",
            ],
            "neu": ["anyone know how long {b} shipping takes to {city} right now?"],
            "pos": ["{b} delivered a day early, not bad at all", "fast shipping from {b}, arrived well packed"],
            "sarc": ["love how {b} promised 2-day delivery and it's been {n} days. great job"],
        },
        "app": {
            "neg": ["the {b} app crashes every time I try to check out"],
            "neu": ["{b} pushed an app update, new cart layout"],
            "pos": ["the new {b} app is honestly great, checkout is so much faster"],
            "sarc": ["nothing like the {b} app logging me out mid-payment. very cool"],
        },
        "payment": {
            "neg": ["{b} charged me twice and the refund is still pending"],
            "neu": ["does {b} work with international cards?"],
            "pos": ["{b} cashback hit my account instantly, love it"],
            "sarc": [],
        },
        "support": {
            "neg": ["waited {n} minutes on hold with {b} support just to get disconnected"],
            "neu": ["opened a ticket with {b}, waiting to hear back"],
            "pos": ["shoutout to {b} support, fixed my issue in five minutes"],
            "sarc": [],
        },
        "product": {
            "neg": ["would not recommend {b}, the blender died after a week"],
            "neu": ["got a new kettle from {b}, will report back"],
            "pos": ["not gonna lie, {b} quality is really good"],
            "sarc": [],
        },
    },
}
# negation variants (positive words, negative meaning and vice versa)
NEGATION = {
    "pt": ["não foi nada bom comprar na {b} desta vez", "não tenho do que reclamar da {b}, tudo certo", "nunca mais compro na {b}"],
    "es": ["no estuvo nada bien la compra en {b}", "no tengo quejas de {b}, todo bien"],
    "en": ["not happy with {b} at all this time", "can't complain about {b}, everything arrived fine", "never buying from {b} again"],
}
CODE_SWITCH = [
    "the delivery da {b} foi rápida mas o suporte é lento",
    "muy buen producto de {b} but shipping took forever",
    "{b} checkout is fast, mas o frete tá caro demais",
    "pedí en {b} y llegó super rápido, honestly impressed",
    "comprei na {b} e a entrega foi on time, finally",
]
COMPETITOR = {
    "pt": [
        "a {c} entregou em 2 dias, a {o} ainda não mandou nem o código de rastreio",
        "troquei a {o} pela {c} e não me arrependo",
        "preço da {c} tá melhor que o da {o} essa semana",
        "a {c} também atrasou minha entrega, tá difícil",
        "atendimento da {c} é bom, mas o app é confuso",
    ],
    "es": ["{c} tiene envío gratis, tal vez me cambio", "{c} me entregó tarde también", "prefiero {c}, los precios son más bajos"],
    "en": ["{c} shipping was faster than {o} this time", "switched from {o} to {c}, so far so good", "{c} support is just as bad honestly"],
}
SPIKE = {
    "pt": [
        "comprei na promoção da {b} e o pedido sumiu, rastreamento parado em Cajamar",
        "{b} a entrega da promoção atrasou e ninguém responde no chat",
        "a {b} vendeu mais do que conseguia entregar, meu pedido da promoção tá parado há dias",
        "cadê meu pedido {b}?? prometeram entrega ontem",
        "mais um aqui com entrega atrasada da {b}, que vergonha",
        "{b} cancelou a entrega da promoção sem explicação",
        "rastreio da {b} diz 'em rota' desde segunda, palhaçada",
        "a {b} tá entregando pra todo mundo menos pra mim, pedido da promoção parado",
        "reclamação registrada: entrega da {b} atrasada pela segunda vez",
        "promoção boa, entrega péssima. {b} não dá conta",
        "parabéns {b}, conseguiu atrasar a entrega de todo mundo ao mesmo tempo",
        "minha geladeira da promoção da {b} não chegou, prazo estourado",
        "{b} responde meu pedido!! entrega atrasada e sem previsão",
    ],
    "es": [
        "{b} mi pedido de la promo no llega y nadie responde",
        "envío atrasado de {b} otra vez, qué vergüenza",
        "compré en la promoción de {b} y el envío está congelado",
        "{b} no entregó nada de lo que prometió hoy",
    ],
    "en": [
        "{b} sale order still not delivered, tracking frozen for days",
        "so {b} sold way more than they can deliver. my order is stuck",
        "still waiting on my {b} delivery from the sale. no updates, no answers",
        "{b} delivery delays are out of control today",
    ],
}
CITIES = {"pt": ["São Paulo", "Recife", "Porto Alegre", "BH", "Curitiba", "Salvador", "Manaus"], "es": ["Bogotá", "Medellín", "Lima", "CDMX", "Santiago"], "en": ["Miami", "Austin", "NYC", "Chicago"]}
DOW = {"pt": ["segunda", "terça", "quarta", "quinta", "sexta"], "es": ["lunes", "martes", "miércoles", "jueves"], "en": []}
TAILS = {
    # by tone: neg / pos / neu (sarcasm takes the "sarc" tails)
    "pt": {
        "neg": ["", "", "", " 😡", " 🙄", " #fail", " @AcmeOficial", "!!", " aff", " 😤", " é sério isso?"],
        "pos": ["", "", "", " 😍", " 👏", " @AcmeOficial", "!!", " 🥰", " top"],
        "neu": ["", "", "", " @AcmeOficial", " #AcmeBR", " 🤔"],
        "sarc": ["", " 🙃", " 👏👏", " kkkk", " 🙄"],
    },
    "es": {
        "neg": ["", "", " 😡", " @AcmeLatam", "!!", " 🙄", " qué bronca"],
        "pos": ["", "", " 😍", " @AcmeLatam", "!!", " 👏"],
        "neu": ["", "", " @AcmeLatam", " 🤔"],
        "sarc": ["", " 🙃", " jajaja", " 👏👏"],
    },
    "en": {
        "neg": ["", "", " 😡", " @AcmeHelp", "!!", " smh", " 😤", " unreal"],
        "pos": ["", "", " 👍", " @AcmeHelp", "!!", " 🙌", " 10/10"],
        "neu": ["", "", " @AcmeHelp", " 🤔"],
        "sarc": ["", " 🙃", " lol", " 👏👏"],
    },
}
OPENERS = {
    "pt": {"neg": ["gente, ", "sério, ", "de novo: ", "alguém me explica: ", "bom dia só pra quem não é cliente da Acme. "],
           "pos": ["gente, ", "olha só: ", "preciso elogiar: "], "neu": ["gente, ", "então, "], "sarc": ["", "ah sim, "]},
    "es": {"neg": ["oigan, ", "en serio, ", "otra vez: "], "pos": ["tengo que decirlo: ", "oigan, "], "neu": ["bueno, "], "sarc": ["", "ah claro, "]},
    "en": {"neg": ["ok so ", "PSA: ", "update: ", "again: "], "pos": ["ok ", "honestly ", "PSA: "], "neu": ["fyi ", "so "], "sarc": ["", "wow, "]},
}
HANDLE_A = ["mari", "joao", "lu", "gabi", "rafa", "bia", "vini", "caro", "dani", "fer", "nico", "vale", "matt", "jess", "kev", "sam", "leo", "tati", "pablo", "sofi"]
HANDLE_B = ["souza", "_sp", "lima", "dev", "_oficial", "rj", "bh", "tech", "_mx", "_co", "nyc", "_pe", "silva", "vibes", "", "costa", "mom", "gamer"]


def handle():
    return f"{pick(HANDLE_A)}{pick(HANDLE_B)}{rng.randint(1, 999) if maybe(0.6) else ''}"


def fill(tpl, lang, brand, other=None, tone="neu"):
    t = tpl.format(
        b=brand,
        c=brand,
        o=other or "Acme",
        n=rng.randint(3, 21),
        d=rng.randint(1, 12),
        dow=pick(DOW[lang]) if DOW[lang] else "monday",
        city=pick(CITIES[lang]),
    )
    if maybe(0.2) and not t.startswith(("¿", "{")):
        t = pick(OPENERS[lang][tone]) + t
    if maybe(0.35):
        t = t[0].upper() + t[1:]
    return t + pick(TAILS[lang][tone])


PLATFORMS = ["twitter", "instagram", "reclame_aqui", "linkedin", "tiktok"]


def metrics(viral=False):
    likes = int(rng.paretovariate(1.3) * (20 if viral else 3)) - 1
    shares = max(0, int(likes * rng.uniform(0.02, 0.3)))
    replies = max(0, int(likes * rng.uniform(0.05, 0.4)))
    reach = max(likes * rng.randint(8, 40), rng.randint(40, 400))
    return {"likes": likes, "shares": shares, "replies": replies, "reach": reach}


def mention_record(i, t, lang, text, brand, platform=None):
    platform = platform or rng.choices(PLATFORMS, weights=[5, 3, 3, 1, 2])[0]
    if platform == "linkedin" and lang == "pt" and maybe(0.5):
        text = text[0].upper() + text[1:]
    rec = {
        "id": f"mn_{1862000000 + i * 7919}",
        "created_at": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "platform": platform,
        "user": {"handle": "@" + handle()},
        "text": text,
    }
    r = rng.random()
    if r < 0.65:
        rec["lang"] = lang
    elif r < 0.75:
        rec["lang"] = None
    # else: no lang key at all
    rec["brand"] = brand
    rec["metrics"] = metrics(viral=platform == "tiktok")
    return rec


def make_mentions():
    file = "mentions.jsonl"
    recs = []
    i = 0
    langs = ["pt", "es", "en"]
    lw = [6, 3, 2]
    for day in range(DAYS):
        base = rng.randint(6, 11)  # daily Acme/AcmePay mentions before the spike
        for _ in range(base):
            lang = rng.choices(langs, weights=lw)[0]
            brand = "AcmePay" if maybe(0.25) else "Acme"
            topic = "payment" if brand == "AcmePay" and maybe(0.6) else pick(["delivery", "delivery", "app", "support", "product", "payment"])
            r = rng.random()
            if r < 0.08:
                tpl, tone = pick(NEGATION[lang]), "neu"
            elif r < 0.14:
                tpl, tone = pick(CODE_SWITCH), "neu"
            else:
                tone = rng.choices(["neg", "neu", "pos", "sarc"], weights=[4, 3, 4, 1])[0]
                opts = M[lang][topic][tone]
                if not opts:
                    tone, opts = "neg", M[lang][topic]["neg"]
                tpl = pick(opts)
            text = uniq(lambda: fill(tpl, lang, brand, tone=tone))
            i += 1
            recs.append(mention_record(i, rand_time(day), lang, text, brand))
        for _ in range(rng.randint(1, 3)):  # competitor mentions (share of voice)
            lang = rng.choices(langs, weights=lw)[0]
            comp = pick(["Globex", "Initech"])
            text = uniq(lambda: fill(pick(COMPETITOR[lang]), lang, comp, other=pick(["Acme", "AcmePay"]), tone="neu"))
            i += 1
            recs.append(mention_record(i, rand_time(day), lang, text, comp))
    # the 2026-11-14 delivery spike: many negative external mentions about delivery
    for _ in range(58):
        lang = rng.choices(langs, weights=[7, 2, 2])[0]
        text = uniq(lambda: fill(pick(SPIKE[lang]), lang, "Acme", tone="neg"))
        i += 1
        recs.append(mention_record(i, rand_time(13, 9, 23), lang, text, "Acme", platform=rng.choices(PLATFORMS, weights=[6, 2, 5, 0, 3])[0]))
    recs.sort(key=lambda r: r["created_at"])
    # HTML that the report must escape
    xss = [
        mention_record(9001, rand_time(9), "en", "lol <script>alert('x')</script> Acme please fix your site", "Acme"),
        mention_record(9002, rand_time(11), "pt", "olha o que aparece no site da Acme <img src=x onerror=alert(1)> kkkk", "Acme"),
    ]
    recs.insert(40, xss[0])
    recs.insert(120, xss[1])
    lines = [("ok", json.dumps(r, ensure_ascii=False).encode()) for r in recs]
    # --- broken records ---
    dup = json.dumps(recs[60], ensure_ascii=False).encode()
    lines.insert(150, ("duplicate", dup))  # the same post delivered twice by the social listening API
    r = mention_record(9003, rand_time(4), "pt", "", "Acme")
    r["text"] = None  # deleted post: text null -> missing field
    lines.insert(33, ("missing_field:text", json.dumps(r, ensure_ascii=False).encode()))
    r = mention_record(9004, rand_time(6), "en", " \t ", "AcmePay")
    lines.insert(77, ("empty_text", json.dumps(r, ensure_ascii=False).encode()))
    r = mention_record(9005, rand_time(8), "es", "la entrega de Acme llegó a tiempo", "Acme")
    r["created_at"] = "2026-11-31T25:61:00Z"
    lines.insert(101, ("bad_timestamp", json.dumps(r, ensure_ascii=False).encode()))
    lines.insert(
        130,
        ("malformed_row", b'{"id": "mn_1869999999", "created_at": "2026-11-10T12:00:00Z", "platform": "twitter", "text": "Acme entrega'),
    )
    r = mention_record(9006, rand_time(10), "pt", "PLACEHOLDER", "Acme")
    pre, post = json.dumps(r, ensure_ascii=False).split("PLACEHOLDER")
    lines.insert(
        170,
        ("invalid_utf8", pre.encode() + "Atendimento péssimo, não recomendo".encode("cp1252") + post.encode()),
    )
    with open(os.path.join(DEMO, file), "wb") as f:
        for _, b in lines:
            f.write(b + b"\n")
    for n, (kind, b) in enumerate(lines, start=1):
        if kind != "ok":
            plant("social_mentions", file, {"line": n}, kind, b.decode("utf-8", "replace")[:80])
    TOTALS["social_mentions"] = len(lines)
    return recs


# ======================================================================================
# 5. Product reviews (Parquet)
# ======================================================================================
REVIEWS = {
    5: {
        "pt": [("Excelente", "Produto excelente, chegou bem embalado e antes do prazo."), ("Recomendo", "Uso todo dia e funciona perfeitamente, recomendo a compra."), ("Muito bom", "Superou minhas expectativas, acabamento de primeira.")],
        "es": [("Excelente", "Muy buena calidad y llegó rapidísimo."), ("Me encantó", "Funciona perfecto, lo volvería a comprar.")],
        "en": [("Love it", "Works great, arrived early and well packed."), ("Great value", "Excellent quality for the price, highly recommend.")],
    },
    4: {
        "pt": [("Bom", "Bom produto, só achei o manual confuso."), ("Gostei", "Cumpre o que promete, a entrega demorou um pouco.")],
        "es": [("Bueno", "Buen producto, aunque el envío tardó más de lo esperado.")],
        "en": [("Pretty good", "Solid product, setup took longer than expected.")],
    },
    3: {
        "pt": [("Mediano", "É ok, nada de especial pelo preço."), ("Regular", "Funciona, mas esquenta bastante.")],
        "es": [("Normal", "Cumple, pero esperaba más.")],
        "en": [("It's okay", "Does the job, nothing special.")],
    },
    2: {
        "pt": [("Decepcionante", "A qualidade caiu muito em relação ao modelo anterior."), ("Atrasou", "O produto é razoável mas a entrega atrasou duas semanas.")],
        "es": [("Malo", "Se rompió la tapa a la segunda semana.")],
        "en": [("Disappointed", "Stopped working properly after a month.")],
    },
    1: {
        "pt": [("Péssimo", "Veio quebrado e a troca é uma novela, não recomendo."), ("Não chegou", "Paguei e o produto nunca chegou, descaso total."), ("Horrível", "Nunca mais compro, produto com defeito e sem suporte.")],
        "es": [("Pésimo", "Nunca llegó y no me devuelven el dinero.")],
        "en": [("Terrible", "Arrived broken and support never answered."), ("Do not buy", "Charged twice through AcmePay and still no refund.")],
    },
}
PRODUCTS = ["uma air fryer", "uma geladeira", "um liquidificador", "um fone bluetooth", "uma cafeteira", "um aspirador", "uma smart TV", "um micro-ondas"]


def make_reviews():
    file = "reviews.parquet"
    ids, ts, cust, brand, stars, title, body, channel = [], [], [], [], [], [], [], []
    for k in range(64):
        s = rng.choices([5, 4, 3, 2, 1], weights=[5, 3, 2, 2, 3])[0]
        lang = rng.choices(["pt", "es", "en"], weights=[6, 2, 2])[0]
        opts = REVIEWS[s].get(lang) or REVIEWS[s]["pt"]
        ti, bo = pick(opts)
        if maybe(0.4) and lang == "pt":
            bo = f"Comprei {pick(PRODUCTS)}. " + bo
        b = "AcmePay" if "AcmePay" in bo else ("Acme" if maybe(0.85) else pick(["Acme", "AcmePay"]))
        day = rng.randrange(DAYS)
        ids.append(f"RV-{70000 + k * 13}")
        ts.append(rand_time(day).replace(microsecond=0))
        cust.append(f"{pick(FIRST).title()} {pick(LAST).title()[0]}.")
        brand.append(b)
        stars.append(s)
        title.append(ti)
        body.append(bo)
        channel.append(rng.choices(["app_store", "site", "marketplace"], weights=[3, 4, 3])[0])
    # broken: empty body, and a null body (missing text)
    for (kind, val) in [("empty_text", ""), ("missing_field:text", None)]:
        k = len(ids)
        ids.append(f"RV-{70000 + k * 13}")
        ts.append(rand_time(5 + k % 5).replace(microsecond=0))
        cust.append("Anônimo")
        brand.append("Acme")
        stars.append(1 if val is None else 3)
        title.append("Sem comentário" if val is None else "")
        body.append(val)
        channel.append("site")
    table = pa.table(
        {
            "review_id": pa.array(ids, pa.string()),
            "reviewed_at": pa.array(ts, pa.timestamp("ms", tz="UTC")),
            "customer": pa.array(cust, pa.string()),
            "product_brand": pa.array(brand, pa.string()),
            "stars": pa.array(stars, pa.int8()),
            "title": pa.array(title, pa.string()),
            "body": pa.array(body, pa.string()),
            "channel": pa.array(channel, pa.string()),
        }
    )
    pq.write_table(table, os.path.join(DEMO, file), compression="snappy")
    plant("product_reviews", file, {"row": len(ids) - 1}, "empty_text", "body = ''")
    plant("product_reviews", file, {"row": len(ids)}, "missing_field:text", "body = null")
    TOTALS["product_reviews"] = len(ids)


# ======================================================================================
# 5b. Internal services (issue #14): service-desk export with queues, internal CSAT survey,
#     supplier e-mails about payments. A separate random stream, so the files above do not change.
# ======================================================================================
srng = random.Random(SEED + 14)
# ISO weeks 2026-W43 .. W46 (W46 is still in progress on the demo date 2026-11-14: not published).
WEEKS = [datetime(2026, 10, 19, tzinfo=timezone.utc) + timedelta(weeks=i) for i in range(4)]

# provider -> week index -> share of negative answers (IT improves, HR gets worse).
NEG_SHARE = {
    "IT": [0.7, 0.5, 0.3, 0.2],
    "HR": [0.2, 0.3, 0.5, 0.6],
    "Facilities": [0.4, 0.4, 0.4, 0.35],
    "Finance": [0.5, 0.5, 0.5, 0.5],
    "Legal": [0.3, 0.3, 0.3, 0.3],
}

# (provider, requester department) -> distinct people per week. Cells under 5 are suppressed, and
# each provider then loses its smallest published cell too (secondary suppression).
SERVICE_PLAN = {
    ("IT", "Sales"): [6, 6, 6, 6],
    ("IT", "Operations"): [6, 6, 7, 6],
    ("IT", "Logistics"): [5, 5, 5, 5],
    ("IT", "Marketing"): [3, 3, 3, 3],
    ("HR", "Sales"): [5, 5, 5, 5],
    ("HR", "IT"): [6, 6, 6, 6],
    ("HR", "Logistics"): [6, 6, 6, 6],
    ("HR", "Operations"): [2, 2, 2, 2],
    ("Facilities", "Logistics"): [6, 6, 6, 6],
    ("Facilities", "Operations"): [6, 6, 6, 6],
    ("Facilities", "Legal"): [2, 2, 2, 2],
    ("Finance", "Sales"): [5, 5, 5, 5],
    ("Finance", "Marketing"): [5, 5, 5, 5],
    ("Legal", "Sales"): [5, 3, 5, 5],  # W44: a suppressed provider total in the trend
}

# Queue names as the service desk exports them -> mapped in demo.toml [organization.providers]
# (Facilities is used as it is: provider_reason = column:queue).
QUEUES = {"IT": ["TI-Suporte N1", "TI-Infraestrutura"], "HR": ["Folha de pagamento", "RH-Benefícios"], "Facilities": ["Facilities", "Manutenção predial"]}
# "Which service are you rating?" in the CSAT survey -> mapped in demo.toml.
SERVICE_NAMES = {"IT": "TI", "HR": "RH", "Facilities": "Facilities", "Finance": "Financeiro", "Legal": "Jurídico"}

# Comments per provider and language: (positive, negative, mixed = praise then a complaint).
SERVICE_TEXTS = {
    "IT": {
        "pt": (["O técnico resolveu o problema do notebook em minutos, excelente atendimento.",
                "A VPN nova está rápida e estável, muito obrigado pelo suporte.",
                "Trocaram meu computador no mesmo dia, atendimento nota dez."],
               ["O sistema de chamados caiu de novo e ninguém responde há dias.",
                "Meu notebook continua travando e o chamado foi fechado sem solução.",
                "A VPN cai toda hora e o suporte demora uma semana para responder."],
               ["O técnico foi muito educado. Mas o notebook continua travando toda manhã.",
                "Gostei do novo portal. Porém o sistema de ponto ficou fora do ar dois dias."]),
        "es": (["El técnico resolvió lo del portátil muy rápido, gracias.",
                "La nueva VPN funciona perfecto, excelente soporte."],
               ["El sistema se cae cada día y nadie contesta los tickets.",
                "Mi computadora sigue sin funcionar y ya pasaron cinco días."],
               ["La atención fue amable. Pero el sistema sigue lento y pierdo horas."]),
        "en": (["The technician fixed my laptop within minutes, great service.",
                "Quick and friendly support, the new VPN works perfectly."],
               ["The ticketing system is down again and nobody answers.",
                "My laptop keeps crashing and the ticket was closed without a fix."],
               ["The support agent was polite. But my laptop still crashes every morning."]),
    },
    "HR": {
        "pt": (["O RH explicou tudo sobre o plano de saúde com muita paciência, obrigado.",
                "As férias foram aprovadas rapidinho, atendimento excelente."],
               ["O pagamento das horas extras veio errado de novo e ninguém explica.",
                "Meu benefício foi cancelado sem aviso, isso é um absurdo.",
                "As férias aprovadas sumiram do sistema e o atendimento não resolve."],
               ["A analista foi simpática. Mas o desconto errado no salário continua sem solução."]),
        "es": (["Me ayudaron muy rápido con el certificado laboral, gracias."],
               ["El pago de las horas extra llegó mal otra vez y nadie responde.",
                "Perdieron mi solicitud de vacaciones por segunda vez."],
               ["La atención fue cordial. Pero el bono sigue sin aparecer en el sueldo."]),
        "en": (["HR sorted out my benefits enrollment in a day, thank you."],
               ["My overtime pay is wrong again and nobody replies.",
                "They lost my vacation request for the second time."],
               ["The HR partner was kind. But my salary is still missing the bonus."]),
    },
    "Facilities": {
        "pt": (["Consertaram o ar-condicionado da sala no mesmo dia, ótimo trabalho.",
                "A limpeza do escritório melhorou muito, parabéns à equipe."],
               ["O ar-condicionado do terceiro andar está quebrado há duas semanas.",
                "As cadeiras novas são desconfortáveis e ninguém responde o chamado.",
                "O estacionamento continua sem iluminação e é perigoso à noite."],
               ["A equipe veio rápido. Mas o ar-condicionado voltou a pingar no dia seguinte."]),
        "es": (["Arreglaron el aire acondicionado muy rápido, gracias."],
               ["El aire acondicionado de la oficina no funciona desde hace semanas."],
               ["Vinieron enseguida. Pero la silla nueva sigue rota."]),
        "en": (["They fixed the office air conditioning the same day, great job."],
               ["The office is freezing and the air conditioning ticket is ignored."],
               ["The team came quickly. But the desk is still broken."]),
    },
    "Finance": {
        "pt": (["O reembolso da viagem caiu em dois dias, muito bom.",
                "O financeiro respondeu rápido sobre a nota fiscal, obrigado."],
               ["Meu reembolso está atrasado há um mês e ninguém dá retorno.",
                "O cartão corporativo foi bloqueado sem aviso, péssimo atendimento."],
               ["O time foi atencioso. Mas o reembolso de outubro ainda não foi pago."]),
        "es": (["El reembolso llegó rápido, gracias."],
               ["Mi reembolso lleva un mes de retraso y nadie responde."],
               ["Fueron amables. Pero el reembolso sigue pendiente."]),
        "en": (["My travel reimbursement was paid in two days, thanks."],
               ["My reimbursement is a month late and nobody answers."],
               ["They were friendly. But the reimbursement is still pending."]),
    },
    "Legal": {
        "pt": (["O jurídico revisou o contrato do fornecedor em um dia, excelente."],
               ["O contrato está parado no jurídico há três semanas."],
               ["A revisão foi cuidadosa. Mas o prazo de três semanas atrasou o projeto."]),
        "es": (["Revisaron el contrato muy rápido, excelente."],
               ["El contrato lleva tres semanas detenido."],
               ["La revisión fue cuidadosa. Pero el plazo retrasó el proyecto."]),
        "en": (["Legal reviewed the supplier contract in a day, excellent."],
               ["The contract has been stuck for three weeks."],
               ["The review was thorough. But three weeks delayed the project."]),
    },
}

SUPPLIERS = [
    "financeiro@steelworks.example", "comercial@steelworks.example", "k.weber@steelworks.example",
    "contas@acoforte.example", "vendas@acoforte.example", "cobranca@embalagens-sul.example",
]
SUPPLIER_MAILS = {
    "neg": [
        ("Fatura {n} vencida", "Prezados, a fatura {n} venceu há {d} dias e o pagamento ainda não foi feito. Precisamos de uma posição do financeiro."),
        ("Pagamento em atraso - NF {n}", "A nota fiscal {n} está em aberto há {d} dias. Sem o pagamento não conseguimos liberar o próximo lote."),
        ("Overdue invoice {n}", "Hello, invoice {n} is {d} days overdue. Please confirm the payment date with accounts payable."),
        ("Factura {n} pendiente", "La factura {n} lleva {d} días vencida y nadie de finanzas responde."),
    ],
    "pos": [
        ("Pagamento recebido - NF {n}", "Confirmamos o recebimento do pagamento da nota fiscal {n}. Obrigado pela agilidade do financeiro."),
        ("Invoice {n} paid", "Thanks, invoice {n} was paid ahead of schedule. Great working with your finance team."),
    ],
}


def service_time(week, lo=8, hi=19):
    d = srng.randrange(6 if week == 3 else 7)  # W46 ends on the demo date (2026-11-14, a Saturday)
    return WEEKS[week] + timedelta(days=d, seconds=srng.randint(lo * 3600, hi * 3600 - 1))


def service_comment(provider, lang, negative):
    pos, neg, mixed = SERVICE_TEXTS[provider].get(lang) or SERVICE_TEXTS[provider]["pt"]
    return srng.choice(neg + mixed) if negative else srng.choice(pos)


def make_internal_services():
    desk, csat = [], []
    for (provider, dept), counts in SERVICE_PLAN.items():
        people = EMPLOYEES[dept]
        for week, n in enumerate(counts):
            for email, lang in srng.sample(people, n):
                negative = srng.random() < NEG_SHARE[provider][week]
                text = service_comment(provider, lang, negative)
                rating = srng.choice([1, 2, 2, 3]) if negative else srng.choice([4, 4, 5, 5, 5])
                t = service_time(week)
                if provider in QUEUES and srng.random() < 0.55:
                    desk.append({
                        "ticket": f"SD-{7001 + len(desk)}",
                        "opened_at": t.strftime("%Y-%m-%d %H:%M:%S"),
                        "requester": email,
                        "requester_dept": dept,
                        "queue": srng.choice(QUEUES[provider]),
                        "csat": str(rating) if srng.random() < 0.7 else "",
                        "comment": text,
                    })
                else:
                    nps = srng.choice([0, 2, 3, 4, 5, 6]) if negative else srng.choice([7, 8, 9, 9, 10, 10])
                    csat.append({
                        "response_id": f"CS-{3001 + len(csat)}",
                        "submitted_at": t.isoformat(),
                        "email": email,
                        "dept": dept,
                        "service": SERVICE_NAMES[provider],
                        "rating": str(rating),
                        "recommend": str(nps),
                        "comment": text,
                    })
    desk.sort(key=lambda r: r["opened_at"])
    csat.sort(key=lambda r: r["submitted_at"])
    for name, rows, src in [("service_desk_export.csv", desk, "service_desk"), ("internal_csat_2026-11.csv", csat, "internal_csat")]:
        with open(os.path.join(DEMO, name), "w", encoding="utf-8", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0].keys()), lineterminator="\n")
            w.writeheader()
            w.writerows(rows)
        TOTALS[src] = len(rows)

    # Supplier e-mails about payments (provider Finance from the text): 5 supplier people in W43,
    # 3 in W44 (suppressed), 6 in W45 and W46; 2 about purchase orders (Procurement, suppressed).
    mails = []
    for week, n, neg in [(0, 5, 0.8), (1, 3, 0.8), (2, 6, 0.7), (3, 6, 0.5)]:
        for frm in srng.sample(SUPPLIERS, n):
            subj, body = srng.choice(SUPPLIER_MAILS["neg" if srng.random() < neg else "pos"])
            num = srng.randint(10000, 99999)
            t = service_time(week, 9, 18)
            mails.append([f"<pay{len(mails) + 1}.{num}@mail.example>", str(int(t.timestamp())), frm,
                          subj.format(n=num, d=srng.randint(20, 60)), body.format(n=num, d=srng.randint(20, 60))])
    for frm in srng.sample(SUPPLIERS, 2):
        t = service_time(2, 9, 18)
        mails.append([f"<po{len(mails) + 1}@mail.example>", str(int(t.timestamp())), frm, "Pedido de compra parado",
                      "O pedido de compra está parado no portal há uma semana aguardando aprovação."])
    mails.sort(key=lambda r: int(r[1]))
    with open(os.path.join(DEMO, "partner_emails_payments.csv"), "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["message_id", "received_at", "from", "subject", "body"])
        w.writerows(mails)
    TOTALS["partner_emails"] += len(mails)
    return {"service_desk": len(desk), "internal_csat": len(csat), "supplier_payment_mails": len(mails)}


# ======================================================================================
# 6. Roster
# ======================================================================================
def make_roster():
    with open(os.path.join(DEMO, "people.csv"), "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["author", "client_type", "department"])
        for e, ct, d, _ in CONTRACTORS + INVESTORS + [PARTNER_OVERRIDE]:
            w.writerow([e, ct, d])


# ======================================================================================
# EXPECTED.json + README
# ======================================================================================
REASONS = ["malformed_row", "invalid_utf8", "missing_field:text", "empty_text", "bad_timestamp", "duplicate"]


def write_expected():
    sources = {}
    for src, total in TOTALS.items():
        rej = {}
        for b in BROKEN.get(src, []):
            rej[b["reason"]] = rej.get(b["reason"], 0) + 1
        sources[src] = {"input_records": total, "rejects": dict(sorted(rej.items())), "signals": total - sum(rej.values())}
    allr = {}
    for s in sources.values():
        for k, v in s["rejects"].items():
            allr[k] = allr.get(k, 0) + v
    for r in REASONS:
        assert r in allr, f"reason {r} not planted"
    exp = {
        "seed": SEED,
        "note": "input_records counts every record read (CSV data records, non-blank JSONL lines, Parquet rows), rejects included.",
        "sources": sources,
        "totals": {
            "input_records": sum(s["input_records"] for s in sources.values()),
            "rejects": sum(sum(s["rejects"].values()) for s in sources.values()),
            "signals": sum(s["signals"] for s in sources.values()),
            "rejects_by_reason": dict(sorted(allr.items())),
        },
        "broken_records": BROKEN,
        "spike": {"date": "2026-11-14", "brand": "Acme", "topic": "delivery", "segment": "external"},
        "internal_services": {"weeks_published_on_2026-11-14": ["2026-W43", "2026-W44", "2026-W45"], "week_in_progress": "2026-W46", "plan": {f"{p} <- {d}": c for (p, d), c in SERVICE_PLAN.items()}, "note": "distinct requesters per ISO week W43..W46; cells under 5 suppressed, plus one complementary cell per provider; Legal W44 total suppressed"},
        "hr_groups": {"Legal": 3, "Finance": 5, "note": "distinct survey authors; Legal < min_group_size (5) must be suppressed, Finance (=5) shown"},
    }
    with open(os.path.join(DEMO, "EXPECTED.json"), "w", encoding="utf-8") as f:
        json.dump(exp, f, ensure_ascii=False, indent=2)
        f.write("\n")
    return exp


def write_readme(exp):
    s = exp["sources"]
    lines = [
        "# Demo pipeline",
        "",
        "`demo.toml` runs pulso over a fictional nightly feed of **Acme** (brands Acme and AcmePay;",
        "competitors Globex and Initech), 2026-11-01 .. 2026-11-14 UTC, in Portuguese, Spanish and",
        "English. Everything in `demo/` is generated by `scripts/make_demo_data.py` (seeded,",
        "deterministic); re-run it rather than editing the files by hand.",
        "",
        "```sh",
        "pulso run pipelines/demo.toml        # writes ../out/demo (relative to this folder)",
        "```",
        "",
        "| file | source | segment | records | what it holds |",
        "|---|---|---|---|---|",
        f"| `demo/survey_2026-11.csv` | employee_survey | internal | {s['employee_survey']['input_records']} | employee survey (eNPS 0-10 + comment); one respondent per row; Legal has only 3 respondents (suppressed by `min_group_size = 5`), Finance exactly 5 |",
        f"| `demo/helpdesk_tickets.jsonl` | helpdesk | auto | {s['helpdesk']['input_records']} | IT/HR tickets from employees (acme domains), contractors/outsourced staff (roster) and 2 customers who wrote by mistake (external) |",
        f"| `demo/partner_emails*.csv` | partner_emails | auto | {s['partner_emails']['input_records']} | e-mails from the supplier (steelworks.example), the logistics partner (logistica-parceira.example), investors (roster) and one steelworks address the roster overrides to partner; `partner_emails_payments.csv`: supplier e-mails about late payments and purchase orders (provider Finance / Procurement from the text), 2026-10-19 .. 2026-11-13 |",
        f"| `demo/service_desk_export.csv` | service_desk | internal | {s['service_desk']['input_records']} | service-desk tickets with IT, HR and Facilities queues (`provider` from the queue through `[organization.providers]`), optional 1-5 CSAT, pt/es/en comments, ISO weeks 2026-W43 .. W46 |",
        f"| `demo/internal_csat_2026-11.csv` | internal_csat | internal | {s['internal_csat']['input_records']} | internal CSAT survey: which service (TI, RH, Facilities, Financeiro, Jurídico), rating 1-5, would-recommend 0-10 (internal NPS), comment in pt/es/en, often praise then a complaint (aspects) |",
        f"| `demo/mentions.jsonl` | social_mentions | external | {s['social_mentions']['input_records']} | social posts about Acme/AcmePay and competitors; spike of negative delivery mentions on 2026-11-14; two posts carry HTML (`<script>`, `<img onerror>`) the HTML report must escape |",
        f"| `demo/reviews.parquet` | product_reviews | external | {s['product_reviews']['input_records']} | product reviews, 1-5 stars |",
        "| `demo/people.csv` | (roster) | | | contractors, outsourced staff, investors, one partner override |",
        "| `demo/EXPECTED.json` | | | | record and reject counts per source, planted broken records |",
        "",
        "## Planted broken records",
        "",
        "Each has exactly one problem. Lines are 1-based file lines (CSV header = line 1); Parquet rows are 1-based.",
        "For `duplicate`, the listed line is the second copy (the first is a valid record earlier in the file).",
        "",
        "| source | file | line / row | expected reason | what |",
        "|---|---|---|---|---|",
    ]
    for src, items in exp["broken_records"].items():
        for b in items:
            where = f"line {b['line']}" if "line" in b else f"row {b['row']}"
            what = b["what"].replace("|", "\\|").replace("\t", " ")
            lines.append(f"| {src} | `{b['file']}` | {where} | `{b['reason']}` | {what} |")
    lines += [
        "",
        "## Internal services in the demo",
        "",
        "`service_desk` and `internal_csat` map `provider` from the queue / rated service through",
        "`[organization.providers]` in demo.toml (`provider_reason = map:<value>`; the `Facilities` queue",
        "is used as it is: `column:queue`; the `helpdesk` source's IT/HR queues likewise). Supplier e-mails",
        "in `partner_emails_payments.csv` get Finance or Procurement from the text (`text:<term>`, taxonomy",
        "`pipelines/departments.toml`). Distinct requesters per ISO week (W43 .. W46) follow `SERVICE_PLAN`",
        "in the generator: every provider has cells of 5+ people (published), cells of 2-3 people",
        "(suppressed) and so one `complementary` cell; Legal's W44 total has 3 people (suppressed point in",
        "the trend). The demo date 2026-11-14 is a Saturday, so W46 is not published yet (weeks are",
        "published once, when complete).",
        "",
        "Expected totals: "
        + f"{exp['totals']['input_records']} input records, {exp['totals']['rejects']} rejects, {exp['totals']['signals']} signals; "
        + ", ".join(f"`{k}` × {v}" for k, v in exp["totals"]["rejects_by_reason"].items())
        + ".",
        "",
    ]
    with open(os.path.join(PIPE, "README.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


def main():
    os.makedirs(DEMO, exist_ok=True)
    make_survey()
    make_helpdesk()
    make_partner_emails()
    make_mentions()
    make_reviews()
    services = make_internal_services()
    make_roster()
    exp = write_expected()
    write_readme(exp)
    print(json.dumps(exp["totals"], indent=1))
    for k, v in exp["sources"].items():
        print(k, v)


if __name__ == "__main__":
    main()
