import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { type CountryCode, getCountries, parsePhoneNumberFromString } from "libphonenumber-js/max";
import examples from "libphonenumber-js/mobile/examples";
import { normalizePhone, readPhone, requireCountry, requirePhone } from "../../src/domain/phone.ts";
import { ApiError } from "../../src/errors.ts";

/** One example mobile number of every country libphonenumber knows, as E.164. */
const MOBILES: Array<{ country: CountryCode; e164: string; national: string }> = Object.entries(examples).map(
  ([country, national]) => {
    const parsed = parsePhoneNumberFromString(national, country as CountryCode)!;
    return { country: country as CountryCode, e164: parsed.number, national: parsed.formatNational() };
  },
);

describe("phone numbers with a default country (readPhone)", () => {
  test("local format is read in the default country; the same text without one is refused", () => {
    const cases: Array<[string, string, string]> = [
      ["0812-3456-789", "ID", "+628123456789"],
      ["0812 3456 789", "ID", "+628123456789"],
      ["8123456789", "ID", "+628123456789"],
      ["07911 123456", "GB", "+447911123456"],
      ["(202) 555-0123", "US", "+12025550123"],
      ["612 34 56 78", "ES", "+34612345678"],
      ["8 916 123-45-67", "RU", "+79161234567"],
    ];
    for (const [input, country, expected] of cases) {
      assert.deepEqual(readPhone(input, country), { phone: expected }, `${input} in ${country}`);
    }
    assert.deepEqual(readPhone("0812-3456-789"), { error: "invalid" });
    assert.deepEqual(readPhone("0812-3456-789", null), { error: "invalid" });
  });

  test("a + or 00 number means the same with or without a default country, for every country's example", () => {
    const countries = getCountries();
    for (const { e164 } of MOBILES) {
      for (const country of [undefined, ...countries]) {
        assert.equal(normalizePhone(e164, country), e164, `${e164} with ${country}`);
        assert.equal(normalizePhone(`00${e164.slice(1)}`, country), e164, `00… ${e164} with ${country}`);
      }
    }
  });

  test("every country's example in its own national format reads back to its number, or is refused as ambiguous", () => {
    const ambiguous: string[] = [];
    for (const { country, e164, national } of MOBILES) {
      const reading = readPhone(national, country);
      if ("error" in reading) {
        assert.equal(reading.error, "ambiguous", `${national} in ${country}`);
        ambiguous.push(country);
      } else {
        assert.equal(reading.phone, e164, `${national} in ${country}`);
      }
    }
    // Mobiles written without a trunk prefix that are also a valid NANP (+1) mobile, e.g. CN 131 2345 6789.
    assert.ok(ambiguous.length <= 5, ambiguous.join(" "));
  });

  test("digits in international form (wa_id) are never read as another number: the same, or refused as ambiguous", () => {
    let ambiguous = 0;
    let total = 0;
    for (const country of getCountries()) {
      for (const { e164 } of MOBILES) {
        total += 1;
        const reading = readPhone(e164.slice(1), country);
        if ("error" in reading) {
          assert.equal(reading.error, "ambiguous", `${e164} in ${country}`);
          ambiguous += 1;
        } else {
          assert.equal(reading.phone, e164, `${e164.slice(1)} in ${country}`);
        }
      }
    }
    // The share docs/contacts.md quotes (under 1 %).
    assert.ok(ambiguous / total < 0.01, `${ambiguous} of ${total} ambiguous`);
  });

  test("two valid readings: the mobile one wins, and two mobiles are ambiguous", () => {
    // 2025550123 is also +20 2 5550123, a Cairo landline; in US it is a (mobile-capable) local number.
    assert.deepEqual(readPhone("2025550123", "US"), { phone: "+12025550123" });
    assert.deepEqual(readPhone("2025550123"), { phone: "+2025550123" });
    // A Japanese mobile's wa_id is also an Indonesian mobile number written without its 0.
    assert.deepEqual(readPhone("819012345678", "ID"), { error: "ambiguous" });
    assert.deepEqual(readPhone("+819012345678", "ID"), { phone: "+819012345678" });
    assert.deepEqual(readPhone("0819012345678", "ID"), { phone: "+62819012345678" });
  });

  test("without a default country nothing changed: digits are international, possible numbers pass", () => {
    fc.assert(
      fc.property(fc.stringMatching(/^\+?[1-9]\d{6,14}$/), (raw) => {
        const withPlus = raw.startsWith("+") ? raw : `+${raw}`;
        const parsed = parsePhoneNumberFromString(withPlus);
        const expected = parsed?.isPossible() ? parsed.number : undefined;
        assert.equal(normalizePhone(raw), expected);
      }),
      { numRuns: 2000 },
    );
  });

  test("requirePhone explains: local numbers need a default country; ambiguous ones need a +", () => {
    const codeAndMessage = (fn: () => unknown): [string, string] => {
      try {
        fn();
      } catch (error) {
        assert.ok(error instanceof ApiError);
        return [error.code, error.message];
      }
      assert.fail("expected an error");
    };
    const [code, message] = codeAndMessage(() => requirePhone("0812-3456-789", "phone_number"));
    assert.equal(code, "invalid_phone_number");
    assert.match(message, /default_country/);
    const [code2, message2] = codeAndMessage(() => requirePhone("819012345678", "phone_number", "ID"));
    assert.equal(code2, "invalid_phone_number");
    assert.match(message2, /ambiguous.*\+/);
  });

  test("requireCountry takes ISO 3166-1 alpha-2 codes in any case and refuses the rest in words", () => {
    assert.equal(requireCountry("id"), "ID");
    assert.equal(requireCountry(" GB "), "GB");
    for (const bad of ["", "XX", "IDN", "Indonesia", "1D", "U S"]) {
      assert.throws(
        () => requireCountry(bad),
        (error: unknown) =>
          error instanceof ApiError &&
          error.code === "invalid_field_value" &&
          /ISO 3166-1 alpha-2/.test(error.message),
        bad,
      );
    }
  });
});
