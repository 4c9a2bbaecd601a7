/**
 * The synthetic population: deterministic (seeded PRNG), realistic enough for
 * the queries to behave as they would on real data — a handful of very common
 * first names, a long tail, emails on a few domains, phone numbers in several
 * countries, flat metadata, and labels on about a third of the contacts.
 */
import type { ContactInput } from "../../src/domain/contacts.ts";

/** A very common first name: the common-term search looks for it. */
export const COMMON_TERM = "muhammad";
/** A surname given to exactly RARE_COUNT contacts: the rare-term search looks for it. */
export const RARE_TERM = "quatermaine";
export const RARE_COUNT = 10;

/**
 * A surname only the oldest contacts carry (1 in 20 of the first 5 % created):
 * its matches are clustered in time, none among the newest rows, as after an
 * import of an old customer base. The search for it cannot be answered by
 * walking the newest rows.
 */
export const CLUSTERED_TERM = "kusumawardani";
/** Digits of the start of an Indonesian mobile (+62 812 3…): a phone-digits search. */
export const PHONE_DIGITS = "6281234";
/** A 2-character term: no trigram to look up. */
export const SHORT_TERM = "ri";

/** Share of contacts named COMMON_TERM (a frequent first name in Indonesia, Pakistan, Nigeria…). */
const COMMON_SHARE = 0.08;

const FIRST_NAMES = [
  "Budi",
  "Siti",
  "Agus",
  "Dewi",
  "Rina",
  "Andi",
  "Putri",
  "Wahyu",
  "Nur",
  "Eko",
  "Sri",
  "Ayu",
  "Joko",
  "Fitri",
  "Rizky",
  "Indah",
  "Dian",
  "Hendra",
  "Yusuf",
  "Aisyah",
  "Fatima",
  "Ahmed",
  "Ali",
  "Omar",
  "Priya",
  "Rahul",
  "Anjali",
  "Arjun",
  "Deepak",
  "Sunita",
  "João",
  "Maria",
  "Ana",
  "Pedro",
  "Lucas",
  "Gabriel",
  "Juliana",
  "Camila",
  "Mateus",
  "Larissa",
  "Carlos",
  "Lucía",
  "Diego",
  "Sofía",
  "Valentina",
  "James",
  "Emma",
  "Olivia",
  "Noah",
  "Liam",
  "Chloe",
  "Grace",
  "Chinedu",
  "Ngozi",
  "Emeka",
  "Amaka",
  "Tunde",
  "Kemi",
  "Thanh",
  "Linh",
  "Minh",
  "Wei",
  "Mei",
  "Hiroshi",
  "Yuki",
];
const LAST_NAMES = [
  "Santoso",
  "Wijaya",
  "Pratama",
  "Saputra",
  "Hidayat",
  "Nugroho",
  "Kusuma",
  "Setiawan",
  "Lestari",
  "Rahman",
  "Hakim",
  "Siregar",
  "Nasution",
  "Harahap",
  "Khan",
  "Hussain",
  "Sharma",
  "Patel",
  "Singh",
  "Gupta",
  "Kumar",
  "Reddy",
  "Silva",
  "Santos",
  "Oliveira",
  "Souza",
  "Pereira",
  "Costa",
  "Almeida",
  "Ferreira",
  "García",
  "Martínez",
  "López",
  "González",
  "Rodríguez",
  "Hernández",
  "Smith",
  "Johnson",
  "Brown",
  "Taylor",
  "Wilson",
  "Okafor",
  "Adeyemi",
  "Eze",
  "Nwosu",
  "Balogun",
  "Nguyen",
  "Tran",
  "Le",
  "Pham",
  "Chen",
  "Wang",
  "Li",
  "Tanaka",
  "Sato",
];
const EMAIL_DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "mail.co.id"];
const CITIES = [
  "Jakarta",
  "Surabaya",
  "Bandung",
  "Mumbai",
  "Delhi",
  "São Paulo",
  "Lagos",
  "Ho Chi Minh City",
];
const TIERS = ["bronze", "silver", "gold", "platinum"];

/**
 * Mobile numbering plans: a prefix and the count of random digits after it
 * (each gives a possible number for libphonenumber). Indonesia dominates,
 * like the customers of a typical WhatsApp Business number there.
 */
const PHONE_PLANS: Array<{ prefix: string; digits: number; weight: number }> = [
  { prefix: "+62812", digits: 8, weight: 30 },
  { prefix: "+62813", digits: 8, weight: 15 },
  { prefix: "+62878", digits: 8, weight: 10 },
  { prefix: "+5511", digits: 9, weight: 10 }, // Brazil, São Paulo mobiles start with 9
  { prefix: "+9198", digits: 8, weight: 15 },
  { prefix: "+234803", digits: 7, weight: 10 },
  { prefix: "+8490", digits: 7, weight: 10 },
];
/** Numbers the "create" scenario makes: a prefix the population never uses. */
export const CREATE_PHONE_PREFIX = "+62857";

/** mulberry32: small, fast, good enough for test data. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(random: () => number, list: readonly T[]): T {
  return list[Math.floor(random() * list.length)]!;
}

function ascii(name: string): string {
  return name
    .normalize("NFD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase();
}

/** The tenants: a big organisation and two small ones, five WhatsApp numbers in all. */
export interface TenantPlan {
  name: string;
  /** Share of all contacts. */
  share: number;
  accounts: Array<{ name: string; phoneNumberId: string; phoneNumber: string; share: number }>;
  labels: string[];
}

/**
 * One large tenant holds 95 % of the rows, so that its list has a "row ~900k"
 * at a million contacts; the others keep tenant isolation honest (every query
 * filters by organisation).
 */
export const TENANTS: TenantPlan[] = [
  {
    name: "Toko Besar (bench)",
    share: 0.95,
    accounts: [
      { name: "Sales", phoneNumberId: "900000000000001", phoneNumber: "+6281100000001", share: 0.6 },
      { name: "Support", phoneNumberId: "900000000000002", phoneNumber: "+6281100000002", share: 0.3 },
      { name: "Wholesale", phoneNumberId: "900000000000003", phoneNumber: "+6281100000003", share: 0.1 },
    ],
    labels: ["vip", "lead", "customer", "churned", "wholesale", "newsletter"],
  },
  {
    name: "Klinik Sehat (bench)",
    share: 0.04,
    accounts: [
      { name: "Front desk", phoneNumberId: "900000000000004", phoneNumber: "+6281100000004", share: 1 },
    ],
    labels: ["patient", "follow-up", "insurance"],
  },
  {
    name: "Kopi Kecil (bench)",
    share: 0.01,
    accounts: [{ name: "Orders", phoneNumberId: "900000000000005", phoneNumber: "+6281100000005", share: 1 }],
    labels: ["regular", "wholesale"],
  },
];

/** Which tenant and account the i-th of n contacts belongs to (interleaved, so every tenant grows over time). */
export function placeOf(random: () => number): { tenant: number; account: number } {
  let r = random();
  for (const [t, tenant] of TENANTS.entries()) {
    if (r < tenant.share || t === TENANTS.length - 1) {
      let s = random();
      for (const [a, account] of tenant.accounts.entries()) {
        if (s < account.share || a === tenant.accounts.length - 1) return { tenant: t, account: a };
        s -= account.share;
      }
    }
    r -= tenant.share;
  }
  return { tenant: 0, account: 0 };
}

/**
 * Phone numbers without collisions: the i-th contact gets number i of a
 * bijective scramble over each plan's space, so numbers look random but never
 * repeat.
 */
function phoneOf(i: number, random: () => number): string {
  const total = PHONE_PLANS.reduce((s, p) => s + p.weight, 0);
  let w = random() * total;
  let plan = PHONE_PLANS[0]!;
  for (const p of PHONE_PLANS) {
    if (w < p.weight) {
      plan = p;
      break;
    }
    w -= p.weight;
  }
  const space = 10 ** plan.digits;
  // Multiplying by a constant coprime to 10^k permutes 0..10^k-1.
  const scrambled = Number((BigInt(i) * 7_919_113n + 123_457n) % BigInt(space));
  return `${plan.prefix}${String(scrambled).padStart(plan.digits, "0")}`;
}

export interface GeneratedContact {
  tenant: number;
  account: number;
  input: ContactInput;
  /** Indexes into the tenant's label list. */
  labels: number[];
}

/**
 * The i-th of n contacts. Rare rows sit at evenly spaced positions so that
 * exactly RARE_COUNT contacts carry RARE_TERM whatever n is.
 */
export function generateContact(i: number, n: number, random: () => number): GeneratedContact {
  const place = placeOf(random);
  const rareEvery = Math.max(1, Math.floor(n / RARE_COUNT));
  const rare = i % rareEvery === Math.floor(rareEvery / 2) && Math.floor(i / rareEvery) < RARE_COUNT;
  const first = random() < COMMON_SHARE ? "Muhammad" : pick(random, FIRST_NAMES);
  const clustered = !rare && i < n * 0.05 && i % 20 === 7;
  const picked = rare ? "Quatermaine" : pick(random, LAST_NAMES);
  const last = clustered ? "Kusumawardani" : picked;
  const name = `${first} ${last}`;
  const hasPhone = random() > 0.01;
  const hasBsuid = !hasPhone || random() < 0.05;
  const input: ContactInput = {
    phone_number: hasPhone ? phoneOf(i, random) : undefined,
    business_scoped_user_id: hasBsuid
      ? `ID.${(1_000_000_000_000 + i * 7).toString(36).toUpperCase()}`
      : undefined,
    display_name: random() < 0.85 ? name : undefined,
    profile_name: random() < 0.6 ? `${first} ${last[0]}.` : undefined,
    email:
      random() < 0.7 ? `${ascii(first)}.${ascii(last)}${i % 1000}@${pick(random, EMAIL_DOMAINS)}` : undefined,
    metadata: {
      customer_id: `C${String(100000 + i)}`,
      tier: pick(random, TIERS),
      city: pick(random, CITIES),
      lifetime_value: Math.round(random() * 500_000) / 100,
      ...(random() < 0.3 ? { newsletter: random() < 0.5 } : {}),
    },
  };
  // Names are what the searches look for: the rare row must carry its name.
  if (rare || clustered) input.display_name = name;
  const labels: number[] = [];
  const labelCount = TENANTS[place.tenant]!.labels.length;
  if (random() < 0.35) labels.push(Math.floor(random() * labelCount));
  if (random() < 0.1) labels.push(Math.floor(random() * labelCount));
  return { tenant: place.tenant, account: place.account, input, labels: [...new Set(labels)] };
}
