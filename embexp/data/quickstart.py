"""Synthetic help-centre knowledge base for the quickstart, written in BEIR format.

A small, deterministic stand-in for a support team's RAG index: the help centre of
"Lumio", a made-up payments company that also sells point-of-sale hardware. Articles
cover six product lines (payments/ACH and wires, cards, hardware with SKU codes,
billing/subscriptions, accounts & security, shipping & returns). The corpus is full of
near-miss pairs (ACH reversal window vs ACH return codes, card dispute vs card declined,
refund policy vs return shipping label, TX-4410-A vs TX-4410-B), and the queries are
written the way customers write: lowercase, typos, slang, unrelated context, indirect
descriptions ("the receipt printer, the bluetooth one"), SKU codes typed loosely.

What makes it hard for an off-the-shelf model, on purpose: articles use formal wording
and the long form ("returned item fee", "two-step verification"), while customers and
staff use acronyms and in-house codenames ("nsf", "2fa", "atlas card", plan code "gr2");
devices are titled by marketing name ("Lumio Counter Bluetooth") while customers type
the model code from the label ("tx4410b"); help-centre boilerplate and "Related articles"
links blur neighbouring articles. What keeps it learnable: every test query is about an
article that train queries also ask about, in other words; each jargon term and device
code appears in train queries too (for the same article or its siblings).

Measured with seed 0 (sentence-transformers InformationRetrievalEvaluator, test split,
300 queries, nDCG@10, all / jargon slice / rest): all-MiniLM-L6-v2 zero-shot
0.589 / 0.486 / 0.662; after one epoch of MultipleNegativesRankingLoss on the 1,300
train pairs (batch 32, lr 5e-5, max_seq_length 128) 0.763 / 0.676 / 0.825.

Everything comes from ``random.Random`` seeded with ``seed``: the same seed gives
byte-identical files, a different seed gives different wording, numbers, splits and ids.
Pure standard library, no network, no model; generation takes well under a second.

Layout written by :func:`generate`::

    OUT/corpus.jsonl      {"_id": "kb-0001", "title", "text", "metadata": {"product_line"}}
    OUT/queries.jsonl     {"_id": "q-00001", "text", "frequency", "slices": ["jargon"] | []}
    OUT/qrels/{train,dev,test}.tsv   query-id <TAB> corpus-id <TAB> score (header line)
    OUT/README.md

``frequency`` is how often customers ask the query (Zipf-like: a few head queries asked
thousands of times, a long tail asked once or twice). ``slices`` tags the jargon /
acronym confusion set: queries whose wording hinges on an acronym, SKU-like code or
in-house jargon ("ach reversal window", "tx4410b wont pair", "rma", "nsf fee").

Qrels: score 2 for the article a query was written for; a query that names a device
family but no variant ("my tx-4410 wont pair") is answered by every variant's article,
each with score 1. With ``graded=False`` every score is 1. Queries are split by query:
no query, and no normalised query text, is in two splits. Test and dev queries use a
phrasing (a "core") that no train query of the same article uses; train queries ask about
the same articles in other words.

CLI: ``python -m embexp.data.quickstart OUT [--seed N]``.
"""

from __future__ import annotations

import argparse
import json
import re
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["PRODUCT_LINES", "generate", "main", "normalize_query"]

PRODUCT_LINES = ("payments", "cards", "hardware", "billing", "security", "shipping")
COMPANY = "Lumio"

# ---------------------------------------------------------------------------------------
# Content. Template syntax: "{a|b|c}" picks one alternative at random; "{name}" is a named
# slot filled from the article's context. Cores (customer phrasings) starting with "!"
# hinge on an acronym / code / in-house jargon and are tagged with the "jargon" slice.
# A topic is (key, title, body, cores, head); head topics get the most traffic.
# ---------------------------------------------------------------------------------------

_PAYMENTS = [
    ("ach-reversal-window", "When an incoming transfer can be reversed",
     "An originator can reverse an ACH credit or debit within {five|5} banking days of the "
     "settlement date. Reversals are only permitted for a duplicate entry, a wrong amount or "
     "a wrong receiving account. If a reversal posts after the funds became available, your "
     "balance is debited and the entry appears as ACH REVERSAL on your statement.",
     ["money got pulled back out of my account after {3|4|5} days",
      "payment {showed up|landed} then got pulled back a few days later",
      "the {client|sender} pulled back the money they sent me, is that even allowed",
      "!ach reversal window",
      "!how long is the ach reversal window for {credits|debits}"], True),
    ("ach-return-codes", "Why a bank transfer is returned",
     "When the receiving bank rejects an ACH entry it sends it back with a return code such "
     "as R01, R02 or R10. The code explains why the entry failed and whether you may "
     "re-present it. Most returns arrive within two banking days; returns for unauthorized "
     "debits can arrive up to 60 days later.",
     ["my transfer {bounced|came back} with some {weird|strange} code",
      "bank payment came back with a {weird|strange} letter and number code on it",
      "!list of ach return codes",
      "!ach return code meanings"], False),
    ("same-day-ach-cutoff", "Deadlines for same-day bank transfers",
     "Same-day ACH files submitted before {2:45|3:00} p.m. ET settle on the same banking day. "
     "Files received after the cutoff settle on the next banking day. Weekends and federal "
     "holidays are not banking days, so a Friday evening submission settles on Monday.",
     ["sent money in the afternoon and it {didnt|did not} arrive same day",
      "latest time i can send money so it arrives same day",
      "!sda cutoff time",
      "!sda deadline"], False),
    ("ach-limits", "How much you can send by bank transfer",
     "Standard accounts can send up to ${25,000|50,000} per day and ${100,000|150,000} per "
     "month by ACH. Limits reset at midnight ET. You can request a higher limit under "
     "Settings > Limits; we review requests within two business days and may ask for recent "
     "bank statements.",
     ["it {wont|won't} let me send more than {25k|25 grand} at once",
      "how do i send more than {25k|25 grand} in a day",
      "!ach velocity limit",
      "!raise my ach velocity limit"], False),
    ("ach-debit-authorization", "Getting permission to debit a customer's bank account",
     "Before you pull funds from a customer's bank account you need their authorization, "
     "written, online or recorded, as required by the bank transfer network's rules. Keep each "
     "authorization for two years after it ends and give the customer a way to revoke it. "
     "Our template covers recurring and one-time debits.",
     ["what do i need from a customer before i take money out of their bank",
      "do i need a signed form to take money from someones checking account",
      "!nacha authorization rules",
      "!nacha mandate template"], False),
    ("ach-pending", "Bank transfer still pending",
     "Standard ACH transfers take one to three banking days to settle. While the receiving "
     "bank processes the entry, the transfer shows as Pending in Activity. Transfers "
     "submitted on weekends or holidays start processing on the next banking day.",
     ["bank transfer stuck on pending for {2|3|4} days",
      "money left my account but the other side still {hasnt|has not} got it",
      "!ach stuck in pending",
      "!ach pending 3 days"], False),
    ("micro-deposits", "Confirming your bank account with two small deposits",
     "To link a bank account without signing in to your bank, we send two deposits of less "
     "than $1. They arrive in one to two banking days. Enter both amounts in the dashboard "
     "within ten days to confirm the account; three wrong attempts lock verification for "
     "24 hours.",
     ["got two tiny deposits like {32|14} cents what are these",
      "never got the tiny deposits to confirm my bank",
      "!micro deposit verification",
      "!microdeposits not showing"], False),
    ("routing-number", "Finding your routing and account number",
     "Your nine-digit routing number and your account number are under Accounts > "
     "Details. Use them to set up direct deposit from an employer or to receive transfers. "
     "Wires use a different routing number, shown on the same page.",
     ["where is the 9 digit number for direct deposit",
      "need the 9 digit bank number for my paycheck",
      "!aba number",
      "!aba routing lookup"], False),
    ("wire-fees", "Fees for sending and receiving wires",
     "Outgoing domestic wires cost ${15|20} and international wires ${35|45}. Incoming "
     "domestic wires are free; incoming international wires cost $15. Intermediary banks may "
     "deduct their own fees from international wires before the money arrives.",
     ["why was i charged {$25|25 bucks} for sending money to my supplier",
      "how much does it cost to send money to my supplier by wire",
      "price to wire money",
      "!swift charges deducted from incoming",
      "!swift charges on outgoing wire"], False),
    ("wire-recall", "Recalling a wire sent in error",
     "Wires are final once they are sent. Within the same business day we can submit a recall "
     "request to the receiving bank, but the recipient must agree to return the funds. "
     "Recalls of international wires can take several weeks and carry a $30 fee.",
     ["sent a wire to the wrong person can i get it back",
      "wired money to the wrong account how do i undo it",
      "!fedwire recall",
      "!recall a fedwire with the imad"], False),
    ("international-wire", "Sending money to a bank outside the US",
     "To send an international wire you need the recipient's name and address, their bank's "
     "SWIFT/BIC code and their IBAN or account number. Wires sent in USD may be converted by "
     "the receiving bank; send in the local currency to lock the exchange rate.",
     ["what info do i need to pay a supplier in {germany|spain|the uk}",
      "paying a supplier overseas from my account",
      "!swift bic vs iban",
      "!iban for intl wire"], False),
    ("nsf-fee", "Returned item fee",
     "If a payment or transfer is presented when your available balance is too low, we return "
     "it unpaid and charge a ${30|35} returned item fee, listed as RETURNED ITEM on your "
     "statement. We charge at most three of these fees per day. You can ask us to waive one "
     "fee every twelve months.",
     ["why did i get charged a fee when my balance was low",
      "charged {$35|35 dollars} because my balance was too low",
      "!nsf fee refund",
      "!what is an nsf charge",
      "!got hit with an nsf"], True),
    ("overdraft", "Overdraft coverage",
     "Overdraft coverage lets card purchases and transfers go through when your balance is "
     "short, up to ${100|200}. It is optional and off by default. Bring your balance back "
     "above zero within 14 days to avoid a fee. Items that are not covered are returned "
     "unpaid instead.",
     ["can my account go negative for a few days",
      "let my card go through even if my balance is short",
      "!od protection opt in",
      "!od limit"], False),
    ("funds-hold", "When deposited money becomes available",
     "Large or unusual deposits may be held for up to {five|seven} business days under our "
     "funds availability policy. The first $225 of a check deposit is "
     "available the next business day. The hold end date is shown on the deposit in "
     "Activity.",
     ["deposited a check but i cant use the money yet",
      "why is my check money on hold",
      "!reg cc hold",
      "!reg cc availability"], False),
    ("instant-payout", "Getting your balance in minutes",
     "Instant payouts send your available balance to an eligible debit card within minutes, "
     "any day of the week, for a {1.5%|1.75%} fee (minimum $0.50). Standard payouts remain "
     "free. Instant payouts are limited to $10,000 each.",
     ["can i get my sales money right away instead of waiting",
      "fee for getting my sales money right away",
      "!boost payout fee",
      "!how does boost work for payouts"], False),
    ("payout-schedule", "When your card sales reach your bank",
     "Card sales are paid out to your linked bank account on a rolling basis, two business "
     "days after the sale. Sales made on Friday, Saturday and Sunday arrive on "
     "Tuesday. You can change the payout time of day under Settings > Payouts.",
     ["when do i get the money from my card sales",
      "my sales money from {friday|the weekend} still not in my bank",
      "!payout schedule t+2",
      "!settlement t+2 timing"], True),
    ("payout-failed", "When your bank sends a payout back",
     "If your bank rejects a payout, for example because the account is closed or the details "
     "are wrong, the funds return to your balance within {five|seven} business days and "
     "payouts pause. Update your bank details and the next payout includes the returned "
     "amount.",
     ["my sales money never made it to my bank",
      "sales money bounced back to my balance",
      "bank sent my sales money back to you",
      "payout says failed on the dashboard"], False),
    ("mobile-check-deposit", "Depositing checks with the app",
     "Deposit checks with the app: endorse the back with your signature and 'For mobile "
     "deposit only', then photograph both sides on a dark surface. Remote deposit capture "
     "limits are ${5,000|10,000} per day. Keep the paper check for 14 days.",
     ["how do i deposit a check with my phone",
      "check photo keeps getting rejected by my phone",
      "!rdc limit",
      "!rdc endorsement"], False),
    ("real-time-payments", "Instant bank-to-bank payments",
     "Real-time payments move money between participating banks in seconds, 24/7, over the "
     "instant payment networks. Each payment is final and cannot be reversed. The limit is "
     "$100,000 per payment and the fee is $1.",
     ["can i send money that arrives in seconds even at night",
      "send money to another bank in seconds",
      "!rtp vs fednow",
      "!fednow limit"], False),
    ("ach-debit-block", "Blocking companies from debiting your account",
     "Debit blocks stop companies from pulling money from your account. Block all debits, or "
     "use a filter to allow only approved company IDs. Blocked debits are sent back to the "
     "company and you are notified by email.",
     ["stop a company from pulling money out of my account",
      "block companies from pulling money from my business account",
      "!ach block filter",
      "!ach debit filter company id"], False),
    ("recurring-transfers", "Scheduling recurring transfers",
     "Set up a recurring transfer under Transfers > Schedule. Choose weekly, every two weeks "
     "or monthly, and an end date or a number of transfers. A recurring transfer that falls "
     "on a weekend or holiday is sent on the next business day.",
     ["set up an automatic transfer every month",
      "move money to savings every payday automatically",
      "make the same transfer go out every week automatically"], False),
    ("stop-payment", "Stopping a check or scheduled debit",
     "You can stop a check or a scheduled debit that has not been paid yet. The fee is "
     "${30|35} and the stop lasts six months. Once the check has cleared or the debit has "
     "posted, a stop no longer applies; dispute the transaction instead.",
     ["how do i stop a check i wrote",
      "stop a check before they cash it",
      "how much to cancel a check",
      "cancel a check i already mailed"], False),
    ("refund-a-sale", "Refunding a customer's card payment",
     "Refund a payment from Activity within 120 days of the sale. The refund goes back to the "
     "card the customer paid with and appears on their statement in five to ten business "
     "days. The amount is taken from your balance, or from your bank if your balance is too "
     "low.",
     ["customer wants their money back how do i give it to them",
      "give a customer their money back for a sale",
      "undo a sale and give the money back"], True),
    ("partial-refund", "Refunding part of a payment",
     "To refund only part of a payment, open it in Activity, choose Refund and enter the "
     "amount or pick the items. You can make several partial refunds until the full amount "
     "has been refunded.",
     ["give back only part of what a customer paid",
      "customer returned one of three items, give back only that part",
      "customer only wants to return one thing out of the order"], False),
    ("refund-fees", "Processing fees when you refund a payment",
     "When you refund a payment, the customer gets the full amount back but the original "
     "processing fee is not returned to you. This is because the card networks keep their "
     "interchange fees on refunded transactions.",
     ["i refunded a customer but you kept the fee",
      "why didnt i get the fee back when i gave a customer their money back",
      "refunded a sale and still paid the percentage"], False),
    ("refund-closed-card", "Refunds when the customer's card is closed",
     "If the card a customer paid with has been closed or replaced, the refund is still sent "
     "to it and the customer's bank forwards it to the new card or account. If the bank "
     "rejects it, the amount returns to your balance and you can pay the customer another "
     "way.",
     ["customer lost the card they paid with and wants money back",
      "the card my customer paid with is closed now",
      "customer wants the refund on a new card"], False),
    ("reserve-vault", "Why part of your balance is held in reserve",
     "Some accounts have a rolling reserve: {10%|5%} of each "
     "day's sales is held for 90 days and then released automatically. Reserves depend on "
     "your business type and dispute history and are reviewed every six months.",
     ["why is {10|5} percent of my sales being held back",
      "part of my sales being held back for 90 days",
      "!what is vault",
      "!vault reserve release"], False),
    ("relay-invoices", "Sending invoices customers can pay online",
     "Relay, our invoicing tool, emails your customer an invoice with a payment link. They pay "
     "by card or bank debit and you are notified when it is paid. Unpaid invoices can be "
     "sent reminders automatically.",
     ["send my customer a bill they can pay online",
      "email a bill my customer can pay by card",
      "!relay invoice",
      "!relay payment link"], False),
]

# ACH return codes: (code, short name, what it means, what to do, customer descriptions)
_ACH_CODES = [
    ("R01", "not enough money in the account",
     "the receiver's account did not have enough available balance to cover the debit.",
     "You may re-present the entry up to two more times within 180 days.",
     ["{customer|client} didnt have enough money in their account so the debit failed",
      "pulled a payment from a client and it failed because they were broke"]),
    ("R02", "account closed",
     "the receiver closed the account before the entry settled.",
     "Do not re-present; ask the receiver for new account details.",
     ["{customers|clients} bank account is shut and the payment bounced",
      "debit failed because they shut their bank account"]),
    ("R03", "account not found",
     "the account number is valid in structure but does not match any account or name.",
     "Check the account number and the name on the account.",
     ["bank says the account {doesnt|does not} exist",
      "transfer came back saying they couldnt find the account"]),
    ("R04", "invalid account number",
     "the account number fails the bank's format check.",
     "Correct the account number; a digit is usually missing or transposed.",
     ["typo in the account number and the transfer {came back|bounced}",
      "i think i entered the wrong digits for their account and it bounced"]),
    ("R07", "permission withdrawn",
     "the receiver told their bank they revoked the authorization they gave you.",
     "Stop debiting the account and get a new authorization.",
     ["customer took back their permission for us to debit them",
      "they told their bank we are no longer allowed to take payments"]),
    ("R08", "payment stopped by the receiver",
     "the receiver placed a stop on this specific debit.",
     "Contact the receiver before trying again.",
     ["customer put a stop on the payment at their bank",
      "client blocked that one particular payment at their bank"]),
    ("R10", "receiver says the debit was not authorized",
     "the receiver told their bank they never authorized the debit.",
     "Provide proof of authorization to the receiver; the bank will not reverse the return.",
     ["customer told their bank they never {approved|agreed to} the debit",
      "client claims we took money without asking"]),
    ("R16", "account frozen",
     "the receiving account is frozen, for example by legal action or a debit block.",
     "Do not re-present; ask the receiver for another payment method.",
     ["debit failed because their account is {frozen|locked}",
      "their bank froze the account and our payment bounced"]),
    ("R20", "account type does not allow debits",
     "the account type does not allow ACH debits, such as some savings accounts.",
     "Ask the receiver for a checking account.",
     ["{cant|can't} pull money from their savings account, it bounced",
      "their account type {doesnt|does not} allow withdrawals like ours"]),
    ("R29", "business receiver did not authorize",
     "a business receiver told its bank it did not authorize the debit.",
     "Ask the business to add your company ID to its debit filter.",
     ["business customers bank rejected our debit as not authorised",
      "a company we bill says their bank blocks our withdrawals"]),
]
_ACH_CODE_CORES = [
    "!{code} on {an|my} ach {debit|transfer}",
    "!ach returned {code} what does it mean",
    "!what do i do about an {code} return",
]

_CARDS = [
    ("card-declined", "Why a card purchase doesn't go through",
     "A purchase can be declined for several reasons: not enough available balance, the card "
     "is frozen or expired, the PIN or CVV was wrong, a spending limit was reached, or the "
     "purchase looked like fraud. Generic declines such as code 05 come from "
     "our fraud checks. Open the transaction in Activity to see the reason.",
     ["card keeps getting rejected at the {store|gas station|register}",
      "card rejected online but i have money",
      "!do not honor on my card",
      "!decline code 05 do not honor"], True),
    ("card-dispute", "Questioning a charge on your card",
     "If you do not recognise a charge, or a merchant did not deliver what you paid for, "
     "open a dispute from the transaction in Activity within 60 days of the "
     "statement date. We may give you a provisional credit within ten business days while "
     "the card network investigates.",
     ["got charged for something i never {received|got}",
      "charged for something i {cancelled|returned} and the shop wont fix it",
      "charge on my statement i dont recognize",
      "!file a chargeback",
      "!chargeback on my card provisional credit"], True),
    ("merchant-chargeback", "When a customer disputes a payment to your business",
     "When a cardholder disputes a payment to your business, the amount plus a ${15|20} fee "
     "is held from your balance. Submit evidence, such as receipts, delivery proof or signed "
     "terms, within {seven|ten} days. The issuing bank decides the outcome, usually within "
     "60 to 75 days.",
     ["a buyer said my charge was fraud and the money got taken from my balance",
      "buyer told their bank my charge was fraud",
      "!chargeback evidence",
      "!chargeback fee merchant side"], True),
    ("card-freeze", "Temporarily pausing your card",
     "Freezing a card blocks new purchases and ATM withdrawals instantly; recurring payments "
     "you have already set up can still go through. Unfreeze the card at any time from the "
     "card screen. If you think the card was stolen, report it instead.",
     ["temporarily turn off my card",
      "turn off my card for a bit, i might have left it in the car",
      "pause my card until i find it",
      "turn my card back on, found it in my jacket"], False),
    ("card-lost-stolen", "Report a lost or stolen card",
     "Report a lost or stolen card right away from the card screen or by phone. We cancel the "
     "card and ship a replacement with a new number within {five|seven} business days; "
     "expedited delivery is free for stolen cards. Review recent transactions and dispute any "
     "you do not recognise.",
     ["my wallet got stolen",
      "lost my wallet with my card in it",
      "someone took my purse with all my cards",
      "pickpocketed on the train and my card is gone"], True),
    ("pin-reset", "Changing your card PIN",
     "Reset your PIN from the card screen in the app after confirming your identity. After "
     "three wrong entries the PIN is locked for 24 hours; you can unlock it by setting a new "
     "PIN. A new PIN works at ATMs immediately.",
     ["forgot the 4 digit code for my card",
      "atm says wrong 4 digit code",
      "cant remember the number i punch in at the atm",
      "typed the wrong number at the atm three times"], False),
    ("card-contactless", "Tapping your card to pay",
     "If tapping your card does nothing, hold it flat against the reader for two seconds. "
     "Contactless purchases above the local limit need the chip and PIN. After several taps "
     "in a row, a chip purchase may be required for security before tapping works again.",
     ["tapping my card at the register does nothing",
      "tapping my card doesnt work but putting it in does",
      "!nfc card not reading",
      "!nfc not working on my card"], False),
    ("authorization-hold", "Temporary holds from hotels and gas stations",
     "Hotels, gas stations and car rentals often place an authorization hold larger than the "
     "final amount. The hold shows as pending and drops off when the merchant settles, "
     "usually within {three|five} business days and at most 30 days.",
     ["hotel took extra money and its still pending",
      "gas station {charged|held} 100 bucks for a 20 dollar fill up",
      "!preauth hold release",
      "!pre auth hold"], False),
    ("mobile-wallet", "Adding your card to a phone wallet",
     "Add your card to Apple Pay, Google Pay or Samsung Pay from the card screen or from the "
     "wallet app. If adding fails, check that the app is up to date and that the billing ZIP "
     "code matches. Virtual cards can be added immediately.",
     ["put my card on my phone wallet",
      "cant add my card to my phone wallet",
      "!apple pay provisioning failed",
      "!google pay tokenization error"], False),
    ("foreign-transaction-fee", "Fees on purchases in other currencies",
     "Purchases in a foreign currency or processed by a merchant outside the US carry a "
     "{2%|3%} fee. If a merchant offers to charge you in dollars, decline: dynamic currency "
     "conversion usually has a worse exchange rate.",
     ["extra fee on my purchases while traveling abroad",
      "charged 3 percent extra on stuff i bought abroad",
      "!fx fee",
      "!dcc markup"], False),
    ("travel-notice", "Using your card abroad",
     "You do not need to tell us before you travel; our fraud checks use your phone's "
     "location if you allow it in the app. Make sure your contact details are current so we "
     "can reach you if a purchase looks unusual.",
     ["going to europe next week will my card work",
      "do i have to tell you before i go on a trip abroad",
      "tell you im traveling so you dont block it"], False),
    ("credit-limit-increase", "Requesting a higher credit line",
     "Credit accounts open for at least {three|six} months can request a higher limit under "
     "Card > Limit. We look at your payment history and income; the request does not affect "
     "your credit score. You will get a decision within two business days.",
     ["want to spend more on my credit card each month",
      "how do i get a higher max on my credit card",
      "!cli request",
      "!cli denied"], False),
    ("late-fee", "Late payment fees",
     "If we do not receive at least the minimum payment by the due date, a fee of up to "
     "${29|32} is charged. Set up automatic payments to avoid it. We can waive one late fee "
     "every twelve months on request.",
     ["charged extra because i paid my card a day late",
      "paid my credit card late and got a fee",
      "can you take off the late charge this once"], False),
    ("autopay", "Paying your card balance automatically",
     "AutoPay pays your credit card automatically each month from a linked bank account. "
     "Choose the minimum payment, the statement balance or a fixed amount. Payments are "
     "taken on the due date; change or cancel them at least three days before.",
     ["pay off my card automatically every month",
      "pay my card bill automatically",
      "auto pay the full amount or just the minimum"], False),
    ("card-updater", "Recurring charges after a card replacement",
     "When we replace a card, the card networks' updater services send the new number to "
     "many merchants that charge you regularly. Some merchants do not use the updater, so "
     "update your card details with streaming services and utilities yourself.",
     ["my netflix stopped working after i got a new card",
      "subscriptions failing since my new card came",
      "!vau abu card updater",
      "!vau abu not updating merchants"], False),
    ("cashback", "Earning and using cashback",
     "Eligible purchases earn {1%|1.5%} cashback, credited to your balance at the end of each "
     "statement cycle. Cash withdrawals, transfers and fees do not earn cashback. Cashback "
     "does not expire while the account is open.",
     ["where is my money back from purchases",
      "how much money back do i get on purchases",
      "!cashback redemption"], False),
    ("card-renewal", "Card renewal and expiry",
     "We send a renewed card about 30 days before your current card expires. Activate it "
     "when it arrives; the old card stops working at the end of its expiry month. The card "
     "number stays the same but the expiry date and security code change.",
     ["my card expires next month will i get a new one",
      "card about to expire do you send a new one",
      "!card reissue"], False),
    ("cvv", "Finding your card's security code",
     "The three-digit security code is printed on the back of physical cards. For virtual "
     "cards, tap Show details on the card screen. Never share the code by phone or email; "
     "we will never ask for it.",
     ["the 3 numbers on the back of the card",
      "website asks for the 3 numbers where are they",
      "!cvv2",
      "!cvv location virtual card"], False),
    ("employee-card-controls", "Spending controls for employee cards",
     "Admins can set per-card limits, block merchant categories and restrict cards to "
     "certain days. Limits apply immediately. Employees see their remaining limit in the "
     "app and receive a notification when a purchase is declined by a control.",
     ["stop my staff from buying anything over {500|1000}",
      "block my staff from using the company card at bars",
      "!mcc restrictions",
      "!mcc block"], False),
    ("card-statement", "Understanding your card statement",
     "Your statement shows the closing date, the statement balance, the minimum payment and "
     "the due date, which is 25 days after the closing date. Purchases after the closing date "
     "appear on the next statement.",
     ["whats the difference between the closing date and the due date",
      "when is my card bill actually due",
      "when does my card month start and end"], False),
    ("atm-network", "Finding fee-free ATMs",
     "Withdrawals are free at more than 40,000 in-network ATMs; use the ATM map in the app to "
     "find one. Out-of-network ATMs may charge their own surcharge, which we refund up to "
     "${10|15} a month on the Onyx card.",
     ["where can i get cash without paying a fee",
      "took cash out and got charged by the machine",
      "which cash machines dont charge me",
      "the cash machine charged me 3.50"], False),
    ("card-not-received", "Your new card hasn't arrived",
     "Cards arrive within {seven|ten} business days in a plain white envelope. If yours has "
     "not arrived after that, cancel it from the card screen and order a new one; the first "
     "card is blocked so nobody else can use it.",
     ["its been 2 weeks and my new card never came",
      "still waiting on my card in the mail",
      "card never showed up in the mailbox"], False),
]

# Card products x topics: (product, customer words for it, in-house codename, facts).
# Support staff and regulars use the codename ("atlas card"); the KB never does.
_CARD_PRODUCTS = [
    ("Lumio Everyday", "debit card|regular card|normal debit card", "everyday card",
     dict(kind="debit card",
          activate="Scan the code on the card carrier or enter the last four digits in the app",
          limit="$3,000 per day for purchases and $1,000 per day at ATMs",
          fee="no annual fee and free withdrawals at in-network ATMs",
          replace="a free replacement once a year, then $5",
          rewards="no rewards, but round-ups into savings")),
    ("Lumio Atlas", "business credit card|company credit card|work credit card", "atlas card",
     dict(kind="business credit card",
          activate="An account admin activates the card under Cards > Activate and sets the PIN",
          limit="set by your credit line; each employee card can have its own sub-limit",
          fee="no annual fee and a 3% fee on cash advances",
          replace="free replacements, shipped to the account admin",
          rewards="1.5% cashback on all purchases, paid monthly")),
    ("Lumio Flash", "virtual card|online card|digital card", "flash card",
     dict(kind="virtual card",
          activate="Virtual cards are active as soon as they are created; no activation step is needed",
          limit="the limit you set when creating the card, up to $10,000 per month",
          fee="no fees; single-use cards close after one purchase",
          replace="a new number instantly from the card screen",
          rewards="the same cashback as the card account it belongs to")),
    ("Lumio Onyx", "metal card|premium card|black card", "onyx card",
     dict(kind="metal card",
          activate="Tap the card on the back of your phone when the app asks, or call the number on the sticker",
          limit="$10,000 per day for purchases and $2,500 per day at ATMs",
          fee="a $149 annual fee, including airport lounge access and no foreign transaction fees",
          replace="a free metal replacement, shipped overnight",
          rewards="2% cashback and travel credits")),
]
_CARD_PRODUCT_TOPICS = [
    ("activate", "{Kind}: activation",
     "{activate}. The {kind} must be activated before it works for purchases or at "
     "ATMs. If activation fails, update the app and try again after an hour.",
     ["just got my {slang} how do i turn it on",
      "new {slang} not working yet, do i need to do something first",
      "!activate {inhouse}"]),
    ("limits", "{Kind}: daily limits",
     "Limits on the {kind}: {limit}. Limits reset at midnight ET. Purchases that "
     "exceed a limit are declined with the reason shown in Activity.",
     ["how much can i spend per day on the {slang}",
      "max cash i can take out per day with my {slang}",
      "!{inhouse} daily limit"]),
    ("fees", "{Kind}: fee schedule",
     "The {kind} has {fee}. See the full fee schedule in the app under Cards > "
     "Fees.",
     ["does the {slang} cost anything",
      "is there a yearly charge for the {slang}",
      "!{inhouse} annual fee"]),
    ("replace", "{Kind}: replacing a damaged card",
     "If your {kind} is bent, cracked or the chip stopped working, order a "
     "replacement from the card screen. You get {replace}. The number stays the same.",
     ["my {slang} is bent and wont work at the register",
      "chip on my {slang} is broken need a new one",
      "!{inhouse} replacement"]),
    ("rewards", "{Kind}: rewards",
     "The {kind} earns {rewards}. Rewards are shown under Cards > Rewards.",
     ["what do i earn for using the {slang}",
      "any perks for spending on my {slang}",
      "!{inhouse} rewards rate"]),
]

_BILLING = [
    ("subscription-refund", "Refunds for plan charges",
     "Plan fees are charged in advance and are not refunded for partial months. If you were "
     "charged after cancelling, or charged for a plan you did not use at all, contact us "
     "within 30 days and we will refund the charge to the original card.",
     ["charged for the month even though i cancelled",
      "still charged for my plan after i cancelled",
      "!prorated refund subscription",
      "!prorated refund after cancel"], False),
    ("cancel-subscription", "Ending your plan",
     "Cancel under Settings > Plan > Cancel. Paid features stay active until the end of the "
     "current billing period and you are not charged again. Your data is kept for 90 days in "
     "case you return.",
     ["how do i stop paying every month",
      "stop paying monthly and close my plan",
      "close my plan and stop the charges"], True),
    ("pause-subscription", "Pausing billing for seasonal businesses",
     "Seasonal businesses can pause their plan for one to three months, once a year. While "
     "paused you pay $0, cannot take payments and keep your items, customers and reports. "
     "Resume at any time from Settings > Plan.",
     ["my shop is closed for the winter do i still have to pay",
      "shop closed for the season, stop charging me",
      "we only open in summer, dont want to pay all year"], False),
    ("failed-subscription-payment", "When a plan payment fails",
     "If your plan payment fails we retry it after three, five and seven days and email you "
     "each time. After the last retry your account becomes past due and paid features are "
     "suspended until you update your payment method.",
     ["my account says past due",
      "account says past due and features are turned off",
      "!dunning retries",
      "!past due dunning email"], False),
    ("update-billing-card", "Changing the card your plan is charged to",
     "Change the card we charge for your plan under Settings > Billing > Payment method. The "
     "new card is used for the next invoice; if an invoice is past due, we charge it to the "
     "new card right away.",
     ["change which card my plan gets charged to",
      "plan is charging my old card, change it",
      "use a different card for your monthly bill"], False),
    ("invoices", "Download invoices and receipts",
     "Every plan charge has an invoice. Download PDFs under Settings > Billing > Invoices, or "
     "have them emailed to a billing contact. Invoices list your plan, add-ons, taxes and the "
     "billing period.",
     ["need a copy of my bill for my accountant",
      "where can i find past bills for my accountant",
      "receipt for my monthly payment to you"], False),
    ("vat-sales-tax", "Tax on your invoice",
     "We charge sales tax or VAT based on your business address. EU and UK businesses can add "
     "a VAT ID to have the reverse charge applied. Tax IDs added after an invoice is issued "
     "apply only to future invoices.",
     ["why is there tax on my bill",
      "add my company tax number to the bill",
      "!vat id reverse charge",
      "!vat number on invoice"], False),
    ("annual-billing", "Switching between monthly and yearly billing",
     "Yearly billing costs the equivalent of ten months. Switching to yearly takes effect "
     "immediately and credits the unused part of your month. Switching from yearly to "
     "monthly takes effect at your next renewal date.",
     ["pay once a year instead of every month",
      "cheaper if i pay the whole year at once?",
      "discount if i pay yearly"], False),
    ("proration", "Partial charges when you change plans",
     "When you upgrade in the middle of a billing period, we charge the difference for the "
     "days left. Downgrades take effect at the next renewal and create no "
     "credit. Proration lines appear on your next invoice.",
     ["charged a weird partial amount after switching plans",
      "odd amount on my bill after switching plans",
      "!proration credit",
      "!prorated charge"], False),
    ("promo-codes", "Applying a promo code",
     "Enter a promo code under Settings > Billing > Redeem before your first invoice is paid. "
     "Codes are case-sensitive and cannot be combined. Codes from partner offers only apply "
     "to new accounts.",
     ["where do i put the discount code",
      "discount code didnt work when i signed up",
      "the code from the podcast ad says not valid"], False),
    ("free-trial", "What happens when your free trial ends",
     "Paid plans start with a 30-day free trial. We email you seven days before it ends. If "
     "you do nothing, the plan starts and your card is charged; cancel before the trial "
     "ends to avoid the charge.",
     ["will i be charged after the 30 days free",
      "what happens when the free 30 days are over",
      "!trial conversion",
      "!trial conversion date"], False),
    ("double-charge", "Charged twice for your plan",
     "If you see two plan charges for the same period, one is usually a pending "
     "authorization that drops off within five business days. If both charges have posted, "
     "contact us and we refund the duplicate.",
     ["see the same plan payment two times this month",
      "you billed me twice for my plan",
      "two identical charges from you this month"], False),
    ("billing-contact", "Changing who receives invoices",
     "Invoices and payment receipts go to the billing contact. Change it under Settings > "
     "Billing > Contact; the account owner's login email does not change. You can add up to "
     "three billing contacts.",
     ["invoices going to my old employees email",
      "send the bills to my bookkeepers email instead"], False),
    ("team-seats", "Adding team seats",
     "Each plan includes a number of team seats. Additional seats cost ${5|8} per month each "
     "and are prorated. Remove a team member to free a seat; the charge stops at the next "
     "invoice.",
     ["add another login for my cashier",
      "how much to add logins for more staff",
      "price per extra employee login",
      "does each staff login cost extra"], False),
    ("processing-fees", "Understanding processing fees on your statement",
     "Your monthly statement lists each card payment's processing fee. On interchange-plus "
     "pricing, the fee is the card network's interchange plus our markup, so it varies by "
     "card type. The effective rate is total fees divided by total volume.",
     ["why are my fees higher than {2.6|2.9} percent",
      "different cards cost me different amounts in fees",
      "!interchange plus pricing",
      "!effective rate"], True),
    ("pulse-add-on", "Loyalty program add-on",
     "Lumio Pulse is our loyalty add-on: customers collect points on every purchase and "
     "redeem them for rewards you define. It costs ${45|49} per month per location and can be "
     "added or removed at any time from Settings > Add-ons.",
     ["reward my regulars for coming back",
      "points program to reward my regulars, how much",
      "!how much is pulse",
      "!turn off pulse"], False),
]

# Plans: (name, customer descriptions, facts)
_PLANS = [
    ("Starter", "free plan|basic plan|cheapest plan",
     dict(pcode="ST1", price="$0 per month", rate="2.9% + 30c per online payment and 2.6% + 10c in person",
          limits="one location, one register and two team seats",
          extra="basic reports and email support")),
    ("Growth", "69 dollar plan|middle plan|mid tier plan",
     dict(pcode="GR2", price="$69 per month", rate="2.7% + 30c online and 2.5% + 10c in person",
          limits="up to three locations, five registers and ten team seats",
          extra="inventory, advanced reports and phone support")),
    ("Pro", "149 dollar plan|top self serve plan|second highest plan",
     dict(pcode="PR3", price="$149 per month", rate="2.6% + 30c online and 2.4% + 10c in person",
          limits="up to ten locations, unlimited registers and 25 team seats",
          extra="custom roles, API access and priority support")),
    ("Enterprise", "custom contract plan|big company plan|highest plan",
     dict(pcode="EN4", price="custom pricing", rate="interchange-plus rates negotiated per contract",
          limits="unlimited locations, registers and team seats",
          extra="a dedicated account manager, single sign-on and a 99.9% uptime SLA")),
]
_PLAN_TOPICS = [
    ("pricing", "{plan} plan: price and what's included",
     "The {plan} plan costs {price}. It includes {extra}, and allows {limits}. It appears as "
     "plan code {pcode} on invoices.",
     ["how much is the {desc}",
      "what do i get with the {desc}",
      "!{pcode} plan pricing"]),
    ("upgrade", "Moving up to the {plan} plan",
     "Upgrade to {plan} from Settings > Plan. The change is immediate and the price difference "
     "for the rest of the month is prorated. {plan} adds {extra}.",
     ["want to move up to the {desc}",
      "how do i switch my account to the {desc}",
      "!upgrade to {pcode}"]),
    ("downgrade", "Leaving the {plan} plan for a lower plan",
     "Downgrading from {plan} takes effect at your next renewal. Before downgrading, remove "
     "locations, registers or seats above the lower plan's limits, or the downgrade is "
     "blocked.",
     ["the {desc} is too expensive for us, go cheaper",
      "move down from the {desc}",
      "!downgrade from {pcode}"]),
    ("rates", "Card processing rates on {plan}",
     "On the {plan} plan, card processing costs {rate}. Rates for American Express and "
     "international cards are 0.5% higher. Rates are shown on each payment in Activity.",
     ["whats the fee per card payment on the {desc}",
      "how much do you take from each sale on the {desc}",
      "!{pcode} processing rate"]),
    ("limits", "{plan} plan limits",
     "The {plan} plan allows {limits}. When you reach a limit, adding more is blocked until "
     "you upgrade or remove existing ones.",
     ["how many stores can i have on the {desc}",
      "cant add another register on the {desc}",
      "!{pcode} seat limit"]),
]

# Ways to get paid: (name, customer words, jargon key, facts); two articles each.
_METHODS = [
    ("American Express", "amex|american express cards", "amex",
     dict(fee="3.5% + 30c", settle="two business days", refund="five business days")),
    ("Discover", "discover cards|discover", "discover",
     dict(fee="2.9% + 30c", settle="two business days", refund="five business days")),
    ("Apple Pay and Google Pay", "apple pay|google pay|phone payments", "wallet pay",
     dict(fee="the same rate as the underlying card", settle="two business days",
          refund="the same time as a card refund")),
    ("Klarna pay-in-four", "pay in 4|installments|klarna", "bnpl",
     dict(fee="5.99% + 30c", settle="three business days", refund="up to ten business days")),
    ("Bank debit", "paying from their bank account|bank payments|checking account payments", "ach debit",
     dict(fee="0.8% capped at $5", settle="four business days", refund="up to seven business days")),
    ("Gift cards", "gift cards|store gift cards", "gift card",
     dict(fee="no fee", settle="immediately, as they are prepaid", refund="immediately, back to the gift card")),
    ("Cash App Pay", "cash app|cashapp", "cash app pay",
     dict(fee="2.75%", settle="two business days", refund="one to three business days")),
    ("Foreign-issued cards", "foreign cards|tourist cards|cards from other countries", "intl card",
     dict(fee="an extra 1.5% on top of your plan rate", settle="two business days",
          refund="five to ten business days")),
]
_METHOD_TOPICS = [
    ("accept", "Accepting {method}",
     "{method} can be turned on under Settings > Payment methods. Payments cost {fee} and are "
     "paid out in {settle}. Customers choose it at checkout or on the reader.",
     ["can customers pay me with {words}",
      "how do i turn on {words} at checkout",
      "!{jkey} processing fee"]),
    ("refund", "Refunds and disputes for {method} payments",
     "Refunds of {method} payments reach the customer in {refund}. Disputes follow the "
     "provider's own process and deadlines, shown in the dispute details.",
     ["customer paid with {words} and wants money back",
      "how long until a customer who paid with {words} gets their refund",
      "!{jkey} refund time"]),
]

_SECURITY = [
    ("reset-2fa", "Lost access to your sign-in codes",
     "If you lost access to your authenticator app, sign in with a backup code. If you have "
     "no backup codes, request a reset of two-step verification from the sign-in screen: we "
     "verify your identity with a photo ID and a selfie, which takes {24 to 48|up to 48} "
     "hours, then remove the old authenticator.",
     ["got a new phone and now i cant get the login code",
      "new phone and the login code app is gone",
      "!2fa reset",
      "!2fa lost device"], True),
    ("authenticator-setup", "Setting up an authenticator app",
     "Turn on two-step verification under Security > Sign-in. Scan the QR code with an "
     "authenticator app such as Google Authenticator or 1Password, then enter the six-digit "
     "code it shows. Save your backup codes somewhere safe.",
     ["how do i use google authenticator with my account",
      "make it ask for a code from my phone when i log in",
      "!totp setup",
      "!2fa setup authenticator"], False),
    ("backup-codes", "Using one-time backup codes",
     "When you turn on two-step verification you get ten single-use backup codes. Each code "
     "works once. Generate a new set under Security > Backup codes; doing so cancels the old "
     "set.",
     ["where are those one time recovery codes",
      "used up my spare one time codes",
      "!2fa backup codes",
      "!2fa recovery codes"], False),
    ("sms-code", "Not receiving text message codes",
     "Verification texts can take up to a minute. Check that your phone number is correct, "
     "that you have signal and that texts from short codes are not blocked by your carrier. "
     "You can switch to an authenticator app for more reliable codes.",
     ["text with the code never comes",
      "not getting the code text on my phone",
      "!sms otp not arriving",
      "!sms otp delay"], False),
    ("password-reset", "Reset your password",
     "Choose Forgot password on the sign-in screen and enter your email. The reset link is "
     "valid for 30 minutes and can be used once. Check your spam folder if it does not "
     "arrive within a few minutes.",
     ["forgot my password",
      "forgot my password and the reset email never shows up",
      "the link in the email says expired when i try to get back in"], True),
    ("account-locked", "Account locked after too many sign-in attempts",
     "After {five|six} wrong passwords in a row your account is locked for 30 minutes to "
     "protect it. Wait, or reset your password to unlock it immediately.",
     ["it says im locked out after trying my password a bunch",
      "typed my password wrong too many times now im locked out",
      "account lockout"], False),
    ("unlock-team-member", "Unlocking a team member's account",
     "Owners and admins can unlock a team member who is locked out under Team > Members > "
     "Unlock. This also lets you send them a password reset link or reset their two-step "
     "verification.",
     ["my cashier is locked out can i let them back in",
      "employee locked out of their login, how do i let them in",
      "staff member cant get in after too many tries"], False),
    ("suspicious-login", "Sign-in alerts from a new device or location",
     "We email you when your account is accessed from a new device or location. If it was "
     "not you, reset your password, sign out of all sessions under Security and review "
     "recent activity and payouts.",
     ["got an email about a login from {texas|another country} that wasnt me",
      "i think someone got into my account from {texas|another country}",
      "unrecognized device alert"], True),
    ("sso-saml", "Signing in through your company's identity provider",
     "Enterprise accounts can require sign-in through an identity provider such as Okta, "
     "Microsoft Entra ID or Google Workspace. Upload your IdP metadata XML under Security > "
     "SSO, map the email attribute and test with one user before enforcing.",
     ["want my staff to log in with {okta|google workspace|azure}",
      "let staff use their {okta|google workspace|azure} login",
      "!saml sso setup",
      "!saml idp metadata"], False),
    ("security-keys", "Using a hardware security key",
     "You can use a hardware security key as your second step. Add it under "
     "Security > Sign-in > Security keys and keep a backup method in case you lose the key.",
     ["can i use a usb key to log in",
      "log in with the little usb key instead of codes",
      "!yubikey",
      "!fido2 key"], False),
    ("api-keys", "Creating and rotating API keys",
     "Secret keys give full access to your account. Create and roll keys under Developers > "
     "API keys; rolling a key can keep the old one valid for up to 24 hours. If a key was "
     "exposed, roll it immediately with no overlap.",
     ["i accidentally posted our secret key on github",
      "our secret key got posted publicly, how do i get a new one",
      "make a new secret key for our developers",
      "!sk_live key leaked",
      "!rotate sk_live"], False),
    ("webhook-signatures", "Verifying webhook signatures",
     "Each webhook request includes a signature header computed with your endpoint's signing "
     "secret. Verify it before trusting the event, and reject requests older "
     "than five minutes to prevent replays.",
     ["how do i know the event requests are really from you",
      "check that event requests to my server really came from you",
      "!webhook signing secret",
      "!hmac signature mismatch"], False),
    ("team-roles", "Team roles and permissions",
     "Give each team member a role: Owner, Admin, Manager, Cashier or Bookkeeper. Managers "
     "see sales and staff but not payouts or bank details; Bookkeepers have read-only access "
     "to reports and statements.",
     ["let my manager see sales but not the bank stuff",
      "give my bookkeeper read only access",
      "!rbac roles",
      "!rbac for managers"], False),
    ("audit-log", "Seeing who changed what",
     "The audit log under Security > Audit log lists sign-ins, permission changes, bank "
     "account changes and refunds, with the team member, time and IP address. Entries are "
     "kept for two years and can be exported.",
     ["see who changed the bank account for payouts",
      "find out which employee changed the bank account",
      "history of who did what in the account"], False),
    ("kyc", "Identity verification documents",
     "Regulations require us to verify the identity of account owners. Upload a "
     "government photo ID and take a selfie in the app. Photos must show all four corners "
     "and be free of glare; verification usually completes within minutes.",
     ["why do you need a photo of my drivers license",
      "photo of my drivers license keeps failing",
      "!kyc verification pending",
      "!kyc docs needed"], False),
    ("kyb", "Business verification documents",
     "To verify your business we need your legal name, EIN and registration documents "
     "such as articles of incorporation, and the details of anyone owning 25% or more. "
     "Payouts stay paused until verification is complete.",
     ["you're asking for my company papers why",
      "what company papers do i need to send you",
      "!kyb ein verification",
      "!kyb documents list"], False),
    ("change-email", "Changing your sign-in email",
     "Change your sign-in email under Settings > Profile. We send a confirmation link to the "
     "new address and a notice to the old one. The change takes effect once you click the "
     "link.",
     ["update the email i log in with",
      "i dont use the email i log in with anymore"], False),
    ("new-device-confirmation", "Why we ask you to confirm new devices",
     "When you sign in from a device or browser we have not seen before, we email you a link "
     "to confirm it. Clearing cookies or using private browsing makes every sign-in look new.",
     ["it keeps asking me to confirm by email every time i log in",
      "every login makes me click an email link",
      "email check every time i use a new computer"], False),
    ("close-account", "Closing your account",
     "Close your account under Settings > Account > Close. Your remaining balance is paid "
     "out first and open disputes must be resolved. We keep records for seven years as "
     "required by law.",
     ["delete my account for good",
      "i want to leave and get my remaining money",
      "what happens to my money if i close"], False),
    ("passkeys", "Signing in with your fingerprint or face",
     "Passkeys let you sign in with your fingerprint, face or device PIN instead of a "
     "password. Add one under Security > Passkeys on each device. Passkeys cannot be "
     "phished and also satisfy two-step verification.",
     ["log in with face id instead of typing a password",
      "use my fingerprint instead of a password",
      "!passkey setup",
      "!passkey on new phone"], False),
    ("session-timeout", "Why you are signed out automatically",
     "For security, dashboard sessions end after {30|60} minutes without activity. Admins "
     "can set a shorter or longer timeout, up to 12 hours, under Security > Sessions.",
     ["keeps logging me out every {15|30} minutes",
      "dashboard logs me out when i step away",
      "make the dashboard stay logged in longer"], False),
    ("phishing", "Reporting fake emails and texts",
     "We never ask for your password, PIN or verification codes. Forward suspicious emails to "
     "our security team and do not click links in texts that say your account is suspended. "
     "If you entered your details, reset your password right away.",
     ["got a text saying my account is suspended with a link",
      "is this email from you asking me to confirm my details legit",
      "where do i forward a scam email"], False),
    ("pci-compliance", "Card data security questionnaire",
     "Businesses that accept cards must comply with the card industry's data security standard. "
     "Most of our merchants qualify for the shortest questionnaire, which you complete in the dashboard in about ten minutes. Accounts "
     "without a completed questionnaire pay a monthly non-compliance fee.",
     ["got an email saying i need to fill a security questionnaire about card data",
      "why am i being charged for not filling a security questionnaire",
      "!pci saq a",
      "!pci non compliance fee"], False),
    ("ip-allowlist", "Restricting access to your office network",
     "Enterprise accounts can restrict dashboard and API access to a list of IP addresses or "
     "ranges. Requests from other addresses are rejected with a 403 error. Add your office "
     "and VPN ranges before enabling it.",
     ["only let our office network get into the account",
      "block logins from outside our office network",
      "!ip whitelist api",
      "!ip whitelist dashboard"], False),
    ("trusted-devices", "Managing signed-in devices",
     "Devices you sign in from are listed under Security > Devices. Remove a device to sign "
     "it out and require two-step verification on its next sign-in.",
     ["remove an old laptop from my account",
      "sign out my ex employees phone from the account",
      "list of phones logged into my account"], False),
    ("risk-review", "Account under review",
     "Our risk team may review an account after unusual activity, such as a spike in volume "
     "or many disputes. During a review payouts can be paused for up to {five|seven} business "
     "days. Respond to any request for documents to speed it up.",
     ["you froze my account and my money",
      "why are my payouts frozen all of a sudden",
      "account says under review and payouts stopped"], True),
    ("fraud-rules", "Blocking risky payments with Shield",
     "Shield scores every online payment for fraud risk. Block payments above a risk score, "
     "require 3D Secure for large amounts, or block countries and card types with custom "
     "rules under Settings > Shield.",
     ["stop people using stolen cards in my online shop",
      "people keep buying with stolen cards on my website",
      "!shield rules",
      "!3ds required rule"], False),
    ("data-export", "Downloading your data",
     "Download your transactions, customers and items as CSV under Settings > Data. To "
     "receive all personal data we hold about you, submit a data access request; we respond "
     "within 30 days.",
     ["download everything you have on me",
      "get all my sales history out into a spreadsheet",
      "!gdpr data request",
      "!gdpr export my data"], False),
]

_SHIPPING = [
    ("refund-policy", "Returning hardware you no longer want",
     "Unused hardware in its original packaging can be returned within 30 days of delivery "
     "for a full refund to the original payment method. Refunds are issued within {five|seven} "
     "business days after we receive the item. Original shipping costs are not refunded.",
     ["can i get my money back for the {card reader|printer|stuff} i bought",
      "changed my mind about the {card reader|printer} i bought, money back?",
      "how many days do i have to send back the reader for my money",
      "return the terminal for cash back within a month?"], True),
    ("return-label", "Printing a prepaid return label",
     "Start a return under Orders > Return and choose the items. We email a prepaid {UPS|FedEx} "
     "shipping label within one business day. Print it, attach it to the original box and "
     "drop the package at any {UPS|FedEx} location.",
     ["how do i send the box back",
      "need the sticker to mail the box back to you",
      "do you pay the postage to send it back",
      "what do i stick on the box to send it back"], True),
    ("rma", "Sending a faulty device for repair",
     "If a device is faulty within warranty, request a return authorization "
     "from Orders > Support. Include the authorization number on the package. We repair or replace the "
     "device within ten business days of receiving it.",
     ["my {reader|printer|terminal} is broken and i need to send it in",
      "{reader|printer|terminal} died and i want you to fix it",
      "!rma number",
      "!how to open an rma"], True),
    ("advance-replacement", "Getting a replacement before you send the faulty device",
     "With advance replacement we ship a new device before you return the faulty one, so you "
     "can keep taking payments. A temporary hold for the device price is placed on your card "
     "and released when we receive the old device within 14 days.",
     ["can you send the new one before i return the broken one",
      "i cant be without a card machine while its being repaired",
      "!advance rma cross ship",
      "!cross ship replacement"], False),
    ("warranty", "Hardware warranty coverage",
     "Hardware comes with a {12|24}-month limited warranty covering defects in materials and "
     "workmanship. Accidental damage, liquid damage and normal wear are not covered. "
     "Extended protection can be bought within 30 days of delivery.",
     ["is it covered if it just stopped working after {8|10} months",
      "dropped it and the screen cracked, is that covered",
      "!warranty period"], False),
    ("order-tracking", "Tracking your hardware order",
     "Once your order ships we email a tracking number. You can also see it under Orders. "
     "Tracking can take 24 hours to show the first scan after the label is created.",
     ["where is my package",
      "where is my package, it shipped days ago",
      "!tracking number not updating"], True),
    ("delayed-order", "Delayed or backordered orders",
     "Most orders ship within two business days. If an item is backordered, the order page "
     "shows the expected ship date and we ship the rest of the order right away. You can "
     "cancel backordered items at no cost.",
     ["order still hasnt shipped after a week",
      "why is my order taking so long to ship",
      "when is the out of stock printer coming"], False),
    ("damaged-delivery", "Devices that arrive damaged",
     "If a device arrives damaged or dead on arrival, report it within seven days with "
     "photos of the box and the device. We ship a replacement at no cost and send a return "
     "label for the damaged unit.",
     ["box arrived crushed and it wont turn on",
      "brand new and it was broken out of the box",
      "!doa replacement",
      "!doa unit what now"], False),
    ("wrong-item", "Received the wrong item",
     "If the item in the box does not match your order, tell us within 14 days. We ship the "
     "correct item right away and email a prepaid label to return the wrong one.",
     ["ordered one model but you sent me a different one",
      "got someone elses order in my box",
      "!wrong sku shipped"], False),
    ("exchange", "Swapping a device for a different model",
     "Within 30 days of delivery you can exchange an unused device for another model, for "
     "example a wired terminal for a cellular one. You pay or are refunded the price "
     "difference; we send the new device when the old one is scanned by the carrier.",
     ["want to swap my reader for the one with {wifi|cellular|bluetooth}",
      "bought the wrong version can i swap it",
      "!exchange for different sku"], False),
    ("customs-duties", "Customs and import duties",
     "We ship to Canada, the UK and the EU with duties and taxes prepaid, so nothing "
     "is due on delivery. For other countries, shipments are sent duties unpaid and the recipient pays "
     "import duties to the carrier.",
     ["had to pay extra to the courier for import",
      "why did the delivery guy charge me import money",
      "!ddp vs dap duties",
      "!ddp shipping countries"], False),
    ("change-address", "Changing the delivery address on an order",
     "You can change the delivery address until the order is packed, usually within two "
     "hours of ordering. After that, contact the carrier with the tracking number to "
     "redirect the package.",
     ["put the wrong address on my order",
      "need the order delivered to my other store instead"], False),
    ("cancel-order", "Cancelling a hardware order",
     "Cancel an order under Orders until it ships. Cancelled orders are refunded in full "
     "within five business days. Once shipped, return the order instead.",
     ["stop my order before it ships",
      "dont want the order i placed this morning anymore"], False),
    ("restocking-fee", "Fee for returning opened items",
     "Hardware returned opened or without its original packaging is subject to a {15%|20%} "
     "restocking fee, deducted from your refund. Defective items and items we shipped in "
     "error are never charged this fee.",
     ["why did i only get part of my money back",
      "you kept some of my money after i returned it",
      "my refund was short by like 15 percent"], False),
    ("late-return", "Returning an item after 30 days",
     "After the 30-day return window, hardware cannot be returned for a refund. If the device "
     "is faulty it is still covered by the warranty; request an RMA instead.",
     ["its been {6|7} weeks can i still send it back",
      "missed the deadline to send my stuff back"], False),
    ("shipping-options", "Shipping speeds and costs",
     "Standard shipping (three to five business days) is free on orders over $49. Two-day "
     "shipping costs ${12|15} and overnight ${29|35}. Orders placed after 2 p.m. ET ship the "
     "next business day.",
     ["how fast can i get the reader",
      "need the reader by tomorrow, how much extra",
      "next day delivery price"], False),
    ("po-box", "Shipping to PO boxes and military addresses",
     "We can ship to PO boxes and APO/FPO/DPO addresses with standard shipping only. Devices "
     "with a lithium battery may take longer to military addresses.",
     ["can you deliver to my po box",
      "!apo fpo address"], False),
    ("missing-package", "Package marked delivered but not received",
     "Check around your premises and with neighbours, and wait 24 hours: carriers sometimes "
     "mark packages delivered early. Then report it under Orders and we open a claim with "
     "the carrier and reship.",
     ["says delivered but nothing at my door",
      "tracking says it arrived but i never got it",
      "carrier lost my box"], False),
    ("recycling", "Recycling old hardware",
     "Send us any old card terminal, printer or scanner, of any brand, for free recycling. "
     "Request a recycling label under Orders; we wipe any data and recycle it under our "
     "e-waste program.",
     ["what do i do with my old card machine",
      "get rid of my old card machines responsibly",
      "!ewaste take back program"], False),
    ("bulk-orders", "Bulk and multi-location hardware orders",
     "Orders of 20 or more devices qualify for volume pricing and can be shipped to several "
     "locations. Request a quote from Orders > Bulk; devices can be pre-configured for each "
     "location.",
     ["need 40 readers for all my stores",
      "buying readers for all my stores, any discount",
      "price break for buying lots of readers"], False),
    ("retail-returns", "Returning hardware bought from a retailer",
     "Hardware bought from a retailer or marketplace must be returned to that seller under "
     "their policy. Warranty repairs are still handled by us: request an RMA with a copy of "
     "the store receipt.",
     ["bought my reader at best buy can i return it to you",
      "got it from amazon not from you, can i still send it back to you",
      "bought at a store, can i return it to you"], False),
    ("accessories", "Buying spare parts and accessories",
     "Spare charging cables, docks, cradles, paper rolls and mounting plates are sold in the "
     "hardware shop under Orders > Accessories. Accessories ship separately and are covered "
     "by a 90-day warranty.",
     ["need a new charging cable for my reader",
      "where do i buy more paper rolls",
      "buy another charging stand"], False),
]

# Shipping destinations: (region, customer words, facts)
_REGIONS = [
    ("Canada", "canada|toronto|vancouver", dict(days="four to six", extra="duties and taxes are prepaid")),
    ("the United Kingdom", "the uk|london|england", dict(days="five to seven", extra="VAT is prepaid")),
    ("the European Union", "the eu|germany|france|spain", dict(days="five to eight", extra="VAT and duties are prepaid")),
    ("Australia", "australia|sydney|melbourne", dict(days="seven to ten", extra="GST is collected by the carrier")),
    ("Puerto Rico and US territories", "puerto rico|guam|the virgin islands", dict(days="five to nine", extra="no import duties apply")),
]
_REGION_TOPICS = [
    ("ship", "Shipping hardware to {region}",
     "We ship hardware to {region} in {days} business days; {extra}. Devices sold for "
     "{region} come with the matching power plug.",
     ["do you ship card readers to {words}",
      "how long does delivery to {words} take",
      "send a card machine to {words}"]),
]

_HARDWARE_GENERAL = [
    ("compatible-devices", "Which phones and tablets work with the app",
     "The Lumio app runs on iPadOS and iOS 16 or later and on Android 11 or later with "
     "Bluetooth 5.0. Older tablets may install the app but cannot connect to readers. "
     "Windows registers are supported through the web dashboard only.",
     ["will the app run on my old ipad",
      "my old ipad is like 6 years old, will the app work",
      "what ipad software do i need"], False),
    ("offline-mode", "Taking payments when the internet is down",
     "If your internet goes down, offline mode lets you keep taking card payments for up to "
     "24 hours. Payments are stored on the device and processed when you reconnect; you "
     "take the risk if a stored payment is declined.",
     ["internet went down can i still take cards",
      "wifi is out at the market, can people still pay by card",
      "!store and forward mode",
      "!saf mode limit"], True),
    ("tap-on-phone", "Accepting contactless payments on your phone",
     "Tap to Pay turns a supported iPhone or Android phone into a contactless reader, with no "
     "extra hardware. Customers tap their card or phone on the back of your phone. Turn it "
     "on in the app under Settings > Tap to Pay.",
     ["can i take cards on my phone without a reader",
      "take card payments with just my phone, no machine",
      "use the iphone itself as the card reader",
      "!softpos",
      "!softpos fees"], False),
]

# Near-miss topics: each shares vocabulary with a topic above but answers another question.
_NEAR_MISS = {
    "payments": [
        ("cancel-sent-transfer", "Cancelling a transfer you sent",
         "You can cancel a bank transfer you sent while it shows Scheduled. Once it is "
         "Processing, we can only ask the receiving bank to send it back if it was a duplicate "
         "or the wrong amount, within five banking days.",
         ["sent money to my landlord twice how do i take one back",
          "i sent a payment by mistake, can i take it back",
          "!cancel outgoing ach"], False),
        ("debit-return-timeframes", "How long a customer can send back a bank debit",
         "Most debits you collect can be returned by the customer's bank within two banking "
         "days. If a consumer says a debit was not authorized, their bank can return it for up "
         "to 60 calendar days after settlement.",
         ["customer paid by bank 6 weeks ago and now its being taken back",
          "how long after a bank payment can the customer undo it",
          "!60 day unauthorized return window"], False),
        ("incoming-wire-missing", "An incoming wire hasn't arrived",
         "Domestic wires sent before 4 p.m. ET arrive the same business day; international "
         "wires take one to five business days. Make sure the sender used your wire routing "
         "number, which is different from the one for bank transfers.",
         ["client says they wired me but i dont see it",
          "waiting on a wire from overseas for days",
          "!incoming wire not received"], False),
        ("direct-deposit", "Getting your paycheck deposited here",
         "Give your employer your routing and account number, or download a prefilled direct "
         "deposit form from Accounts > Details. Paychecks can arrive up to two days early when "
         "your employer sends them early.",
         ["how do i get my paycheck sent here",
          "switch my paycheck to this account",
          "form for my job so my pay goes here"], False),
        ("payout-bank-change", "Changing the bank account for payouts",
         "Change where your sales are paid under Settings > Payouts > Bank account. For "
         "security, the first payout to a new account is delayed by three days and all "
         "owners are notified by email.",
         ["want my sales to go to a different bank",
          "switched banks, where do i update it for my sales money",
          "new bank account for where my sales go"], False),
        ("returned-deposit", "When a check you deposited bounces",
         "If a check you deposited is returned unpaid by the writer's bank, we take the amount "
         "back from your balance and charge a ${10|12} returned deposit fee. You can ask the "
         "writer for another payment.",
         ["check i deposited bounced and now my balance is negative",
          "customers check bounced after i deposited it",
          "fee when a check i put in bounces"], False),
        ("internal-transfer", "Moving money between your own accounts",
         "Transfers between your own Lumio accounts, for example from business to personal, "
         "are instant and free, any day of the week. Use Transfers > Between my accounts.",
         ["move money from my business account to my personal one",
          "instant move between my two accounts here",
          "!book transfer between accounts"], False),
        ("receive-international", "Receiving money from abroad",
         "To receive money from another country, give the sender our SWIFT code, your account "
         "number and your name and address exactly as on the account. Incoming international "
         "wires are converted to dollars at the day's rate.",
         ["supplier in europe wants to pay me, what do i give them",
          "customer overseas needs my bank details to pay me",
          "!swift code to receive intl wire"], False),
        ("negative-balance", "When your balance goes negative",
         "If refunds, disputes or fees are larger than your sales, your balance goes negative. "
         "We recover it from future sales first and, after {three|five} days, debit your "
         "linked bank account.",
         ["why did you take money from my bank account",
          "you pulled money out of my bank to cover refunds",
          "my balance shows a minus sign"], False),
        ("customer-receipts", "Sending receipts to your customers",
         "Customers can get a receipt by email or text after each sale. Turn on automatic "
         "receipts under Settings > Receipts, or resend one from the payment in Activity.",
         ["customer wants a receipt emailed to them",
          "send a copy of the receipt to a buyer after the sale",
          "!digital receipt settings"], False),
    ],
    "cards": [
        ("declined-online", "Online purchases declined",
         "Online purchases can fail when the billing address does not match, the 3-D Secure "
         "check in your app was not approved, or online use is switched off in your card "
         "controls.",
         ["my card works in stores but not on websites",
          "cant buy anything online but the card works at the shop",
          "!avs mismatch decline",
      "!avs decline online"], False),
        ("dispute-status", "Checking the status of a card dispute",
         "Open the disputed transaction to see its status. If the merchant proves the charge "
         "was valid, the provisional credit is removed and we explain why by email. You can "
         "add documents until the case closes.",
         ["its been a month since i reported that charge, any update",
          "the money from my charge complaint disappeared again",
          "!provisional credit reversed"], False),
        ("refund-not-showing", "A store refund isn't on your card yet",
         "When a merchant refunds you, it can take five to ten business days to appear on your "
         "card. Ask the merchant for the refund reference; if it is older than ten days, "
         "contact us with it.",
         ["store says they refunded me but i dont see it",
          "money from my return not back on my card yet",
          "!merchant credit not posted"], False),
        ("recurring-block", "Stopping a merchant's recurring charges",
         "To stop a merchant from charging your card every month, cancel with the merchant "
         "first, then block the merchant under Card > Subscriptions. Blocking does not cancel "
         "your contract with them.",
         ["gym keeps charging my card after i quit",
          "block a company from charging my card every month",
          "stop a subscription from charging my card"], False),
        ("fraud-alert", "Texts asking you to confirm a purchase",
         "When a purchase looks unusual we text you to confirm it. Reply YES or NO, or answer "
         "in the app. We never ask for your PIN or codes in these texts.",
         ["got a text asking if i made a purchase",
          "text asking me to confirm a charge, is it real",
          "!fraud alert yes no text"], False),
        ("cash-advance", "Cash advances on credit cards",
         "Withdrawing cash with a credit card is a cash advance: a {3%|5%} fee applies and "
         "interest starts the same day, with no grace period. Use a debit card for cash "
         "instead.",
         ["took cash out with my credit card and got charged interest right away",
          "why did i pay extra for taking cash from my credit card",
          "!cash advance fee apr",
      "!cash advance apr"], False),
        ("authorized-user", "Adding another person to your card account",
         "The account owner can add an authorized user, who gets their own card with a limit "
         "you choose. You are responsible for their purchases. Add one under Cards > People.",
         ["give my wife a card on my account",
          "get a card for my partner on my account",
          "second card for my son"], False),
    ],
    "billing": [
        ("hardware-financing", "Paying for hardware in installments",
         "Orders over $199 can be paid over 3, 6 or 12 months with no interest. Installments "
         "are taken from your sales each week; pay off the rest at any time under Orders > "
         "Financing.",
         ["can i pay for the reader monthly",
          "spread the cost of my terminals over a few months",
          "!hardware installment plan"], False),
        ("unknown-lumio-charge", "A charge from Lumio on your bank statement",
         "Plan fees appear on statements as LUMIO*PLAN, hardware as LUMIO*SHOP and recovered "
         "negative balances as LUMIO*DEBIT. Match the amount with your invoices or payouts "
         "in the dashboard.",
         ["what is this lumio charge on my bank statement",
          "theres a charge from you on my bank i dont understand",
          "!lumio billing descriptor"], False),
        ("tax-form-1099k", "Your annual tax form for card sales",
         "If you processed more than the reporting threshold last year, your 1099-K is "
         "available by January 31 under Settings > Tax forms. Confirm your tax ID before "
         "December to avoid backup withholding.",
         ["need the tax form for my card sales",
          "wheres my tax form for the money i processed last year",
          "!1099-k download",
      "!1099-k threshold"], False),
        ("nonprofit-discount", "Discounts for nonprofits",
         "Registered nonprofits get {30%|50%} off any paid plan and a lower processing rate on "
         "donations. Apply under Settings > Plan with proof of tax-exempt status.",
         ["we're a charity, do we pay less",
          "discount for charities on the plan",
          "!501c3 discount",
      "!501c3 pricing"], False),
        ("remove-add-on", "Removing add-ons",
         "Remove an add-on under Settings > Add-ons. It stays active until the end of the "
         "billing period and your plan is not affected. Data created by the add-on is kept "
         "for 90 days.",
         ["stop paying for the extras but keep my plan",
          "get rid of the extras on my bill, not the whole plan",
          "drop the loyalty thing but keep everything else"], False),
        ("reactivate-plan", "Coming back after cancelling",
         "If you cancelled in the last 90 days, sign in and choose a plan to restore your "
         "items, customers and reports. After 90 days your data is deleted and you start "
         "fresh.",
         ["i cancelled last month, can i come back",
          "want to start using you again after i quit",
          "!reactivate subscription"], False),
        ("billing-currency", "Changing your billing currency",
         "Plans are billed in the currency of your business country. To change it, for example "
         "after moving your business, contact us; the change applies from the next invoice.",
         ["can you bill me in pounds instead of dollars",
          "my bills are in the wrong currency",
          "we moved to canada but the bills are still in usd"], False),
    ],
    "security": [
        ("change-phone-number", "Changing the phone number that gets your codes",
         "Update the phone number for sign-in codes under Security > Phone. You confirm the "
         "change with a code sent to the old number or with a backup code.",
         ["got a new number, codes still go to my old one",
          "codes go to my old phone number",
          "!update 2fa phone number",
      "!2fa phone number change"], False),
        ("password-change", "Changing your password",
         "To change a password you know, go to Security > Password, enter the current one and "
         "choose a new one of at least 12 characters. Other sessions are signed out.",
         ["want a new password, i know my current one",
          "switch to a stronger password",
          "update my password to something new"], False),
        ("shared-login", "Why staff should not share one login",
         "Each person needs their own login: shared logins break the audit trail and two-step "
         "verification. Add staff as team members instead; Cashier logins are free on every "
         "plan.",
         ["can my employees all use my login",
          "all my staff use the same login is that ok",
          "!shared credentials policy"], False),
        ("api-rate-limits", "API rate limits",
         "The API allows 100 requests per second in live mode and 25 in test mode. Requests "
         "over the limit get a Too Many Requests error; retry with exponential backoff.",
         ["getting too many requests errors from your api",
          "api keeps rejecting us for going too fast",
          "!429 rate limit",
      "!429 too many requests api"], False),
        ("webhook-retries", "Webhook delivery retries",
         "If your endpoint does not return a 2xx response, we retry the event with backoff for "
         "up to three days. You can resend events manually under Developers > Events.",
         ["my server was down, will i get the events again",
          "missed some notifications to our server while it was down",
          "!webhook retry schedule"], False),
        ("account-takeover", "If someone changed your email or password",
         "If you cannot sign in because someone changed your email or password, use Recover "
         "account on the sign-in screen. We freeze payouts and verify your identity before "
         "restoring access.",
         ["someone changed my email and i cant log in",
          "hacked and locked out, they changed my password",
          "!account takeover recovery",
      "!ato lockout recovery"], False),
        ("kyc-failed", "Why identity verification failed",
         "Verification fails when the photo is blurry, the ID is expired, or the name does "
         "not match the account. You can try three times; after that, upload the ID from a "
         "computer.",
         ["it says my id couldnt be verified",
          "verification keeps saying my license didnt match",
          "!kyc rejected"], False),
    ],
    "shipping": [
        ("return-status", "Checking the status of a return",
         "Returns are processed within five business days of arriving at our warehouse. Follow "
         "the return under Orders > Returns; you get an email when it is received and when "
         "the refund is issued.",
         ["sent the box back two weeks ago, any news",
          "did you get my box back yet",
          "!return tracking status"], False),
        ("label-not-received", "Your return label didn't arrive",
         "Return labels are emailed within one business day. If yours has not arrived, check "
         "spam, then download it directly from Orders > Returns.",
         ["never got the email with the return sticker",
          "where is the label to send it back, no email came",
          "!return label email missing"], False),
        ("repair-status", "Checking on a device repair",
         "Repairs take up to ten business days after the device reaches us. The repair status "
         "and the tracking number of the returned device are shown under Orders > Support.",
         ["how long is my repair taking",
          "sent my broken reader in for fixing, where is it",
          "!rma repair status"], False),
        ("missing-parts", "Items missing from your box",
         "If your order arrived without a cable, dock or paper roll, check the packing slip: "
         "some accessories ship separately. If it is not listed as separate, report it within "
         "14 days.",
         ["box came without the charging cable",
          "half my order was missing from the box",
          "!missing accessory in box"], False),
        ("delivery-signature", "Deliveries that need a signature",
         "Orders over $500 need a signature on delivery. If you miss it, the carrier tries "
         "twice more and then holds the package at a nearby pickup point for five days.",
         ["missed the delivery because they needed someone to sign",
          "courier wont leave the box without a signature",
          "!signature required delivery"], False),
        ("price-adjustment", "Price drops after you order",
         "If the price of a device drops within 14 days of your order, we refund the "
         "difference on request. Promotions for new accounts are excluded.",
         ["reader went on sale the day after i bought it",
          "price dropped right after i ordered, can i get the difference",
          "!price adjustment"], False),
        ("warranty-used", "Warranty on second-hand devices",
         "The warranty stays with the device, not the buyer, so a used device is covered for "
         "the rest of its original warranty. Send the serial number to check its coverage.",
         ["bought a used reader, does the warranty still count",
          "got a second hand terminal off ebay is it under warranty",
          "warranty on a reader i bought from another shop owner"], False),
    ],
    "hardware": [
        ("bluetooth-general", "General Bluetooth troubleshooting",
         "If no accessories connect, check that Bluetooth and Location permissions are allowed "
         "for the Lumio app, turn Bluetooth off and on, and remove old pairings from the "
         "tablet's Bluetooth settings.",
         ["none of my bluetooth stuff connects to the ipad",
          "nothing wireless will connect to my tablet",
          "!bluetooth permissions ios app"], False),
        ("app-crash", "The app closes or freezes",
         "If the app closes unexpectedly, update it and the tablet's operating system, then "
         "restart the tablet. If it keeps happening, send a diagnostic report from Settings > "
         "Support.",
         ["app keeps crashing when i open checkout",
          "the app freezes in the middle of a sale",
          "!app crash logs"], False),
        ("receipt-design", "Customizing what prints on receipts",
         "Add your logo, a custom message and return policy to printed and emailed receipts "
         "under Settings > Receipts. Logos print in black and white on thermal printers.",
         ["put my logo on the receipts",
          "change the message at the bottom of the receipt",
          "!receipt footer text"], False),
        ("shared-devices", "Sharing a printer between registers",
         "Several registers at one location can print to the same network printer. Add the "
         "printer on each register; Bluetooth printers can only connect to one register at a "
         "time.",
         ["two cashiers need to use the same printer",
          "share one receipt printer between both registers",
          "!shared printer multiple registers"], False),
        ("device-serial", "Finding a device's serial number",
         "The serial number is on the label under the device and in the app under Settings > "
         "Hardware > About. Support needs it for warranty claims and repairs.",
         ["where is the serial number on my reader",
          "support asked for a number on the device where do i find it",
          "!device sn lookup"], False),
    ],
}

# ---------------------------------------------------------------------------------------
# Hardware families. Each variant differs by one suffix and by how it connects / is
# powered; articles for two variants of a family differ in those details only.
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Variant:
    suffix: str
    label: str  # short description for the title
    conn: str
    pair: str
    power: str
    battery: bool
    hints: tuple[str, ...]  # how customers describe this variant ("the bluetooth one")


@dataclass(frozen=True)
class _Family:
    code: str
    name: str
    slang: tuple[str, ...]
    issues: tuple[str, ...]
    variants: tuple[_Variant, ...]
    reset: str
    error_codes: tuple[tuple[str, str, str, str], ...] = ()


_FAMILIES = [
    _Family("TX-4410", "countertop card terminal", ("countertop card machine", "card machine at the counter", "countertop terminal"),
            ("pair", "battery", "firmware", "reset", "tap", "chip"),
            (_Variant("A", "wired", "a USB-C cable to the register",
                      "plug the USB-C cable into the register and open Settings > Hardware; the terminal is detected automatically",
                      "powered over the USB-C cable and has no internal battery", False,
                      ("one with the cord", "corded one", "wired version")),
             _Variant("B", "Bluetooth", "Bluetooth LE",
                      "hold the side button for five seconds until the light flashes blue, then select the terminal under Settings > Hardware",
                      "a 2,600 mAh battery that lasts about eight hours", True,
                      ("bluetooth one", "wireless one", "one without the cable")),
             _Variant("C", "cellular", "built-in LTE, with no register needed",
                      "insert the included SIM card, power on and sign in with the six-digit device code",
                      "a 3,000 mAh battery that lasts about ten hours", True,
                      ("cellular one", "one with the sim card", "4g version"))),
            "hold the power key and the red X key together for ten seconds",
            (("E-03", "tamper detected", "the terminal detected that its case was opened or damaged and locked itself",
              "Stop using it and request an RMA; tampered terminals cannot be unlocked remotely"),
             ("E-17", "chip read failure", "the chip on the inserted card could not be read",
              "Ask the customer to reinsert the card chip-first or tap instead"),
             ("E-21", "no network connection", "the terminal cannot reach our servers",
              "Check the register's internet connection, or the SIM signal on cellular models"),
             ("E-42", "encryption keys expired", "the terminal's payment keys need to be renewed",
              "Connect it to power and the internet for 15 minutes to download new keys"))),
    _Family("TX-4420", "touchscreen payment terminal", ("touchscreen card machine", "smart terminal", "touchscreen terminal"),
            ("pair", "battery", "firmware", "reset", "tap", "chip"),
            (_Variant("A", "Wi-Fi", "Wi-Fi",
                      "tap Network on the home screen, join your Wi-Fi network and enter the pairing code shown in the app",
                      "a 4,000 mAh battery that lasts a full day", True,
                      ("wifi one", "wifi only version")),
             _Variant("B", "Ethernet dock", "Wi-Fi or the Ethernet port on its charging dock",
                      "place it on the dock with the Ethernet cable connected, then enter the pairing code shown in the app",
                      "a 4,000 mAh battery and charges on the dock", True,
                      ("one with the dock", "ethernet version"))),
            "hold the power button for 15 seconds and choose Factory reset from the recovery menu",
            (("E-03", "tamper detected", "the terminal detected that its case was opened and locked itself",
              "Request an RMA; it cannot be unlocked remotely"),
             ("E-17", "chip read failure", "the card chip could not be read",
              "Ask the customer to reinsert the card or tap instead"),
             ("E-21", "no network connection", "the terminal cannot reach our servers",
              "Check the Wi-Fi network or the dock's Ethernet cable"),
             ("E-42", "encryption keys expired", "the payment keys need to be renewed",
              "Leave it on the dock with internet for 15 minutes"))),
    _Family("MR-77", "mobile card reader", ("little reader that plugs into my phone", "phone card reader", "dongle reader"),
            ("pair", "firmware", "reset", "tap", "chip"),
            (_Variant("L", "Lightning", "the Lightning port of older iPhones and iPads",
                      "plug the reader into the Lightning port and allow the Lumio app to use the accessory",
                      "powered by the phone and has no battery", False,
                      ("iphone one", "lightning one", "one for older iphones")),
             _Variant("C", "USB-C", "the USB-C port of Android phones and newer iPhones",
                      "plug the reader into the USB-C port and allow the Lumio app to use the accessory when asked",
                      "powered by the phone and has no battery", False,
                      ("android one", "usb-c one", "one for newer phones"))),
            "unplug it, then plug it in while holding the small button on its side for five seconds"),
    _Family("PR-2200", "receipt printer", ("receipt printer", "receipt machine"),
            ("pair", "paper", "faded", "firmware", "reset"),
            (_Variant("A", "USB", "a USB cable to the register",
                      "plug the USB cable into the register and choose the printer under Settings > Printers",
                      "powered by its mains adapter", False,
                      ("usb one", "one with the usb cable")),
             _Variant("B", "Bluetooth", "Bluetooth",
                      "hold the feed button while switching it on to enter pairing mode, then select it under Settings > Printers",
                      "powered by its mains adapter", False,
                      ("bluetooth one", "wireless one")),
             _Variant("E", "Ethernet", "an Ethernet cable to your router",
                      "connect the Ethernet cable, print a self-test page to get its IP address and add that address under Settings > Printers",
                      "powered by its mains adapter", False,
                      ("network one", "ethernet one", "one that plugs into the router"))),
            "switch it off, hold the feed button and switch it on, keeping the button held for ten seconds"),
    _Family("SC-310", "barcode scanner", ("barcode scanner", "scan gun"),
            ("pair", "scan", "battery", "reset"),
            (_Variant("A", "corded", "a USB cable",
                      "plug it into the register's USB port; it works as a keyboard and needs no setup",
                      "powered over USB", False,
                      ("corded one", "one with the wire")),
             _Variant("B", "cordless", "Bluetooth through its charging cradle",
                      "place it in the cradle, scan the Pair barcode printed in the quick start guide, then select it in the app",
                      "a rechargeable battery that lasts about 12 hours and charges in the cradle", True,
                      ("cordless one", "wireless one", "one with the cradle"))),
            "scan the Factory Defaults barcode on the last page of the quick start guide"),
    _Family("KD-150", "cash drawer", ("cash drawer", "till drawer", "money drawer"),
            ("drawer", "drawer_key"),
            (_Variant("S", "compact", "an RJ12 kick cable to the receipt printer",
                      "connect the RJ12 cable to the printer's drawer port; the drawer opens when a cash sale is printed",
                      "powered by the printer through the kick cable", False,
                      ("small one", "compact one", "4 bill one")),
             _Variant("L", "large", "an RJ12 kick cable to the receipt printer",
                      "connect the RJ12 cable to the printer's drawer port and set the drawer voltage switch to 24V",
                      "powered by the printer through the kick cable", False,
                      ("big one", "large one", "5 bill one"))),
            "disconnect the kick cable and use the manual release lever under the front edge"),
    _Family("HB-900", "connectivity hub", ("hub", "connectivity box", "little hub box"),
            ("network", "pair", "firmware", "reset"),
            (_Variant("A", "Wi-Fi", "Wi-Fi",
                      "hold the top button until the light pulses white, then join the hub's setup network from the app",
                      "powered by its USB-C adapter", False,
                      ("wifi only one", "one without the network port")),
             _Variant("B", "Ethernet/PoE", "Ethernet with Power over Ethernet, or Wi-Fi",
                      "plug a PoE Ethernet cable into the hub; it is detected on your network within a minute",
                      "powered over Ethernet (PoE) or its USB-C adapter", False,
                      ("poe one", "one with the ethernet port"))),
            "hold the top button for 20 seconds until the light turns amber"),
    _Family("LB-60", "label printer", ("label printer", "sticker printer"),
            ("pair", "labels", "faded", "firmware"),
            (_Variant("A", "2-inch", "Bluetooth",
                      "hold the power button for three seconds until the light blinks blue, then choose it under Settings > Printers",
                      "a rechargeable battery", False,
                      ("small one", "2 inch one")),
             _Variant("B", "4-inch", "USB or Wi-Fi",
                      "connect it by USB once, then choose Wi-Fi setup under Settings > Printers",
                      "powered by its mains adapter", False,
                      ("big one", "4 inch one", "shipping label one"))),
            "hold the feed button for ten seconds while the printer is on"),
    _Family("SK-12", "kitchen display", ("kitchen screen", "kitchen display", "order screen in the kitchen"),
            ("kitchen", "network", "firmware", "reset"),
            (_Variant("A", "12-inch", "Wi-Fi",
                      "join your Wi-Fi network on first start and enter the device code shown in the app",
                      "powered by its mains adapter", False,
                      ("12 inch one", "smaller screen")),
             _Variant("B", "15-inch", "Ethernet",
                      "plug in the Ethernet cable and enter the device code shown in the app",
                      "powered over Ethernet (PoE)", False,
                      ("15 inch one", "bigger screen", "wired one"))),
            "hold the power and volume-down buttons for ten seconds"),
    _Family("WS-30", "weighing scale", ("scale", "weighing scale", "deli scale"),
            ("scale", "pair", "reset"),
            (_Variant("A", "USB", "a USB cable to the register",
                      "plug it into the register and choose the scale under Settings > Hardware",
                      "powered over USB", False,
                      ("usb one", "corded one")),
             _Variant("B", "Bluetooth", "Bluetooth",
                      "hold the tare button for five seconds until the display shows PAIR, then choose it in the app",
                      "AA batteries", False,
                      ("bluetooth one", "wireless one"))),
            "hold the tare and unit buttons together while switching it on"),
]

# Marketing names: the KB titles devices by these; the model code is printed on the device
# label, so customers type it, but articles mention it once at most.
_BRANDS = {"TX-4410": "Lumio Counter", "TX-4420": "Lumio Touch", "MR-77": "Lumio Go",
           "PR-2200": "Lumio Print", "SC-310": "Lumio Scan", "KD-150": "Lumio Till",
           "HB-900": "Lumio Link", "LB-60": "Lumio Tag", "SK-12": "Lumio Kitchen",
           "WS-30": "Lumio Weigh"}

# Issue templates. Named slots: {sku}, {name}, {conn}, {pair}, {power}, {reset}, {label};
# in cores, {s} is the device as a customer types it. Titles and bodies are formal.
_ISSUES = {
    "pair": ("{sku} {name}: connection setup",
             "The {sku} {name} ({label}) connects over {conn}. To pair it, {pair}. Keep it within "
             "{three|five} metres of the register during setup. If it still does not appear, "
             "restart the Lumio app and make sure the device firmware is current.",
             ["{s} {wont|won't|will not} {pair|connect}",
              "{s} keeps {disconnecting|dropping off} from my {ipad|phone|register}",
              "cant get my {s} to show up in the app",
              "!{s} pairing mode"]),
    "battery": ("{sku}: power and charging",
                "The {sku} has {power}. Charge it fully before first use. If it does not charge, "
                "try another outlet and cable; a battery that no longer holds a charge is covered "
                "by the warranty for twelve months.",
                ["{s} {dies|runs out of juice} after {an hour|a couple hours}",
                 "{s} not charging {anymore|at all}",
                 "!{s} battery replacement"]),
    "firmware": ("{sku}: software updates",
                 "The {sku} downloads firmware updates automatically when it is idle and connected. "
                 "An update takes up to {ten|15} minutes; do not unplug or switch off the device "
                 "while the progress bar is shown. If an update fails, restart and it will retry.",
                 ["{s} stuck on {updating|the update screen}",
                  "{s} says software out of date",
                  "!{s} firmware update failed"]),
    "reset": ("{sku}: restoring factory settings",
              "A factory reset erases all settings from the {sku}. To reset it, {reset}. After the "
              "reset, pair it again from the app. Reset a device before giving it to another "
              "location or returning it.",
              ["how do i wipe the {s} {before selling it|to give it to another store}",
               "{s} frozen nothing works, need to {start over|reset it}",
               "!{s} factory reset"]),
    "tap": ("{sku}: contactless acceptance problems",
            "If contactless cards and phones are not read by the {sku}, make sure nothing metal is "
            "near the top of the device and that contactless is enabled under Settings > "
            "Payments. Ask the customer to hold the card or phone still for two seconds.",
            ["customers {cant|can't} tap their {phones|cards} on the {s}",
             "apple pay not working on my {s}",
             "!{s} nfc not reading"]),
    "chip": ("{sku}: inserted card errors",
             "If the {sku} shows Remove card or Try again when a chip card is inserted, ask the "
             "customer to insert it chip-first and leave it until the sale completes. Clean the "
             "slot with a cleaning card if errors happen with many cards.",
             ["{s} says {remove card|try again} when people put their card in",
              "inserting cards into the {s} keeps failing",
              "!{s} emv chip error"]),
    "paper": ("{sku}: paper feed problems",
              "Open the cover of the {sku}, remove the paper roll and any torn pieces, and reload "
              "the roll so the paper feeds from underneath. Use only 80 mm thermal rolls; "
              "thicker paper jams the cutter.",
              ["{s} {eating|chewing up} the paper",
               "receipts stuck inside the {s}",
               "!{s} cutter jam"]),
    "faded": ("{sku}: print quality",
              "Blank prints usually mean the thermal roll is loaded upside down: the coated side "
              "must face the print head. Faded prints mean the head needs cleaning with an "
              "alcohol swab or the print density should be raised in Settings > Printers.",
              ["{s} prints blank {receipts|paper|labels}",
               "prints from the {s} are barely readable",
               "!{s} thermal paper wrong side"]),
    "scan": ("{sku}: barcode reading problems",
             "If the {sku} beeps but nothing appears, the cursor may not be in the search field, "
             "or the keyboard layout is wrong. Scan the USB keyboard barcode in the quick start "
             "guide and set the keyboard language in the app.",
             ["{s} beeps but nothing shows up",
              "{s} lights up but wont read the codes",
              "!{s} keyboard wedge mode"]),
    "drawer": ("{sku}: drawer does not open",
               "The {sku} opens when a cash sale is printed. It connects with {conn}. If it stays "
               "shut, check the cable is in the printer's drawer port, not the phone port, and "
               "that Open drawer on cash is enabled under Settings > Hardware.",
               ["{s} wont pop open after a cash sale",
                "money tray stays shut on cash payments, {s}",
                "!{s} rj12 kick cable"]),
    "drawer_key": ("{sku}: manual release and keys",
                   "To open the {sku} without power, {reset}. Replacement keys are sold in the "
                   "hardware shop; quote the key number stamped on the lock.",
                   ["lost the key for the {s}",
                    "{s} locked and the power is out how do i open it",
                    "!{s} manual release lever"]),
    "network": ("{sku}: network setup",
                "The {sku} connects over {conn}. To set it up, {pair}. A blinking amber light means "
                "it has no internet; move it closer to the router or use a wired connection.",
                ["{s} light {blinking|flashing} and no internet",
                 "{s} {wont|won't} get online",
                 "!{s} wifi setup"]),
    "labels": ("{sku}: label alignment",
               "If labels print across the gap between two labels, recalibrate the {sku}: hold the "
               "feed button until two labels feed out. Make sure the label size in the app "
               "matches the roll.",
               ["labels come out crooked on my {s}",
                "{s} prints half on one sticker half on the next",
                "!{s} gap sensor calibration"]),
    "kitchen": ("{sku}: order routing",
                "If new orders do not appear on the {sku}, check that it is assigned to the right "
                "location and menu categories under Settings > Kitchen displays, and that it is "
                "online. Orders are routed by category.",
                ["kitchen {isnt|is not} getting the tickets on the {s}",
                 "orders not coming through to the {s}",
                 "!{s} order routing"]),
    "scale": ("{sku}: calibration",
              "If the {sku} shows the wrong weight, place it on a flat surface, press tare with "
              "nothing on it, then calibrate with a known weight under Settings > Hardware. "
              "Legal-for-trade certification is void after opening the case.",
              ["{s} weight is off",
               "{s} says things weigh more than they do",
               "!{s} calibration"]),
}

_SPECS = ("{prod}: hardware overview",
          "The {prod} (model {sku}) is the {label} version of the {brand} {name}. It connects over {conn} and is "
          "{power}. In the box: the {prod}, a quick start guide{extras}. Dimensions and the "
          "full data sheet are on the product page.",
          ["what comes in the box with the {s}",
           "{s} does it need to be plugged in all the time",
           "!{s} specs"])

_ERROR_TITLE = "{brand} terminal: {meaning}"
_ERROR_BODY = ("Error {ecode} on {brand} terminals means {what}. {fix}. If the error comes back, note "
               "the time and contact support with the device serial number.")
_ERROR_CORES = ["!{s} {shows|says|displays} {ec}",
                "!{ec} error on my {s}",
                "screen on my {s} {says|shows} {desc}",
                "{s} stopped taking payments and says {desc}"]

_RELEASE_NOTES = ("{brand} firmware {ver} release notes",
                  "Firmware {ver} for the {brand} {name} (model {code}) improves connection stability, shortens "
                  "start-up time and fixes rare display glitches. It installs automatically "
                  "within {days} days of release. Read the release notes for earlier versions "
                  "in the device's Settings > About page.")

# Boilerplate sentences appended to bodies (shared vocabulary within a product line).
_BOILER = {
    "payments": ["Times are shown in Eastern Time (ET).",
                 "Banking days are Monday to Friday, excluding federal holidays.",
                 "This applies to Lumio business and personal accounts.",
                 "Still need help? Contact support from the Help menu in the dashboard."],
    "cards": ["This applies to all Lumio cards unless noted.",
              "You can manage your cards in the app under Cards.",
              "Still need help? Call the number on the back of your card."],
    "billing": ["Only account owners and admins can change billing settings.",
                "Prices are shown in USD and exclude taxes.",
                "Still need help? Contact support from the Help menu in the dashboard."],
    "security": ["We will never ask for your password or codes by phone or email.",
                 "Security settings are available to account owners and admins.",
                 "Still need help? Contact support from the Help menu in the dashboard."],
    "shipping": ["Hardware orders are managed under Orders in the dashboard.",
                 "This applies to orders shipped to the US unless noted.",
                 "Still need help? Contact support from the Help menu in the dashboard."],
    "hardware": ["Keep your device firmware up to date for the best results.",
                 "You can manage devices in the app under Settings > Hardware.",
                 "Still need help? Contact hardware support with the device serial number."],
}

# ---------------------------------------------------------------------------------------
# Customer-noise: frames, misspellings, casing.
# ---------------------------------------------------------------------------------------

_PREFIXES = ["", "", "", "", "", "", "hi ", "hey ", "hello, ", "pls help ", "quick question ",
             "urgent: ", "so ", "um ", "help - ", "ok so "]
# Context customers put before the question, unrelated to the answer.
_CONTEXT = ["i run a small bakery and ", "we have 3 locations and ", "first time using this, ",
            "my manager asked me to find out, ", "been a customer for years, ",
            "sorry if this is a dumb question but ", "i already tried restarting everything, ",
            "i have a customer waiting right now, ", "we just switched over last month and ",
            "i run a food truck, ", "this is the second time this happened, ",
            "our bookkeeper noticed that ", "on my lunch break so quick: ",
            "i own a hair salon and ", "talked to someone yesterday but ",
            "we use your card readers at 2 stores and ", "my accountant is asking, ",
            "we sell online and in person, ", "your chat bot didnt help, ",
            "new owner here, took over the account and ", "re my ticket from last week: "]
_SUFFIXES = ["", "", "", "", "", "?", "?", "??", " help", " what do i do", " pls", " asap",
             " thanks", "!!", " any ideas", " ???", " thx"]
_MISSPELL = {
    "won't": ["wont", "wont"], "can't": ["cant"], "didn't": ["didnt"], "doesn't": ["doesnt", "dosent"],
    "isn't": ["isnt"], "i'm": ["im"], "don't": ["dont"], "it's": ["its"],
    "receive": ["recieve"], "received": ["recieved"], "account": ["acount", "acct"],
    "transfer": ["transfr", "tranfer"], "payment": ["payemnt", "pymt"], "payments": ["pymts"],
    "money": ["moeny", "$$"], "please": ["pls", "plz"], "because": ["bc", "cuz"],
    "password": ["pasword", "pw"], "business": ["buisness", "biz"], "address": ["adress"],
    "what": ["wat"], "you": ["u"], "your": ["ur"], "through": ["thru"], "with": ["w/"],
    "charged": ["chargd"], "cancelled": ["canceled", "cancled"], "tomorrow": ["tmrw"],
    "customer": ["cust", "custmer"], "customers": ["custs"], "verification": ["verfication"],
    "printer": ["priner"], "receipts": ["reciepts"], "receipt": ["reciept"],
    "working": ["workin"], "something": ["smth", "somthing"], "anything": ["anythin"],
    "months": ["mos"], "people": ["ppl"], "thanks": ["thx", "ty"], "really": ["rly"],
    "supplier": ["suplier"], "separate": ["seperate"], "definitely": ["definately"],
}


def normalize_query(text: str) -> str:
    """Lowercase, strip punctuation, collapse whitespace: two queries that normalise equal
    count as the same question."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


# ---------------------------------------------------------------------------------------
# Machinery
# ---------------------------------------------------------------------------------------

_ALT = re.compile(r"\{([^{}]*\|[^{}]*)\}")
_SLOT = re.compile(r"\{(\w+)\}")


def _fill(rng: random.Random, template: str, ctx: dict[str, str] | None = None) -> str:
    """Fill named slots from ``ctx`` (their values may hold alternations), then alternations."""
    if ctx:
        template = _SLOT.sub(lambda m: ctx[m.group(1)] if m.group(1) in ctx else m.group(0), template)
    return _ALT.sub(lambda m: rng.choice(m.group(1).split("|")), template)


@dataclass
class _Article:
    key: str
    line: str
    title: str
    text: str
    cores: list[str]
    head: bool = False
    ctx: dict[str, str] = field(default_factory=dict)
    # hardware: family code + issue key, so a family-only query is answered by all variants
    family: str | None = None
    group: str | None = None


def _body(rng: random.Random, line: str, body: str, ctx: dict[str, str] | None = None) -> str:
    text = _fill(rng, body, ctx)
    extra = list(_BOILER[line])
    rng.shuffle(extra)
    for sent in extra:
        if len(text.split()) >= 52:
            break
        text += " " + sent
    return text


def _sku_forms(code: str, suffix: str | None) -> list[str]:
    """Ways customers type a device code ("TX-4410-B", "tx4410b", "the 4410 b version")."""
    letters, num = code.split("-")
    lo, s = letters.lower(), (suffix or "").lower()
    bare = len(num) >= 3  # "4410" alone identifies a family; "30" does not
    if suffix is None:
        return [f"{lo}-{num}", f"{lo}{num}", f"{lo} {num}", code] + ([num] if bare else [])
    forms = [f"{code}-{suffix}", f"{lo}-{num}-{s}", f"{lo}{num}{s}", f"{lo} {num} {s}",
             f"{lo}-{num} {s}", f"{lo}-{num} {s} version", f"{lo}{num} ({s} model)", f"{lo}-{num}{s}"]
    return forms + ([f"{num}-{s}", f"{num}{s}"] if bare else [])


# Customer words for error codes shown on terminal screens.
_ERROR_WORDS = {
    "E-03": "{something about the case being opened|a lock symbol and the word tamper}",
    "E-17": "{that it cant read the chip|something about the chip}",
    "E-21": "{that its offline|no connection}",
    "E-42": "{something about keys expiring|key expired}",
}


def _alt(values: str | list[str] | tuple[str, ...]) -> str:
    """A ctx value that picks one of ``values`` each time it is filled."""
    if isinstance(values, str):
        values = values.split("|")
    return "{" + "|".join(values) + "}" if len(values) > 1 else values[0]


def _build_articles(rng: random.Random, n_products: int) -> list[_Article]:
    arts: list[_Article] = []
    hand = [("payments", _PAYMENTS), ("cards", _CARDS), ("billing", _BILLING),
            ("security", _SECURITY), ("shipping", _SHIPPING), ("hardware", _HARDWARE_GENERAL)]
    for line, topics in hand:
        for key, title, body, cores, head in topics + _NEAR_MISS[line]:
            arts.append(_Article(key, line, title, _body(rng, line, body), list(cores), head))

    for code, short, what, action, customer in _ACH_CODES:
        body = (f"Return code {code} means {what} {action} These returns usually arrive within "
                "two banking days of settlement and are listed under Activity > Returns.")
        arts.append(_Article(f"ach-{code.lower()}", "payments", f"Returned bank debit: {short}",
                             _body(rng, "payments", body), list(customer) + _ACH_CODE_CORES, False,
                             {"code": _alt([code.lower(), code, f"{code[0]}-{code[1:]}".lower()])}))

    def templated(line, prefix, entities, topics):
        for name, qctx, facts in entities:
            for tkey, title, body, cores in topics:
                ctx = dict(facts)
                arts.append(_Article(f"{prefix}-{name}-{tkey}".lower().replace(" ", "-"), line,
                                     _fill(rng, title, ctx), _body(rng, line, body, ctx), list(cores),
                                     False, qctx))

    templated("cards", "card", [
        (product.split()[-1], {"slang": _alt(words), "inhouse": inhouse},
         {"product": product, "Kind": facts["kind"].capitalize(), **facts}) for product, words, inhouse, facts in _CARD_PRODUCTS],
        _CARD_PRODUCT_TOPICS)
    templated("billing", "plan", [
        (plan, {"desc": _alt(desc), "pcode": facts["pcode"].lower()}, {"plan": plan, **facts})
        for plan, desc, facts in _PLANS], _PLAN_TOPICS)
    templated("payments", "method", [
        (method, {"words": _alt(words), "jkey": jkey}, {"method": method, **facts})
        for method, words, jkey, facts in _METHODS], _METHOD_TOPICS)
    templated("shipping", "region", [
        (region.split()[-1], {"words": _alt(words)}, {"region": region, **facts})
        for region, words, facts in _REGIONS], _REGION_TOPICS)

    for fam in _FAMILIES[:n_products]:
        for var in fam.variants:
            brand = _BRANDS[fam.code]
            ctx = {"sku": f"{fam.code}-{var.suffix}", "name": fam.name, "conn": var.conn,
                   "pair": var.pair, "power": var.power, "reset": fam.reset, "label": var.label,
                   "brand": brand, "prod": f"{brand} {var.label[0].upper()}{var.label[1:]}"}
            qctx = {"variant": var.suffix}
            for issue in fam.issues:
                if issue == "battery" and not var.battery:
                    continue
                title, body, cores = _ISSUES[issue]
                # titles use the marketing name; the body gives the model code once
                title = title.replace("{sku} {name}", "{prod}").replace("{sku}", "{prod}")
                body = body.replace("{sku}", "{prod}")
                arts.append(_Article(f"{fam.code}-{var.suffix}-{issue}".lower(), "hardware",
                                     _fill(rng, title, ctx), _body(rng, "hardware", body, ctx),
                                     list(cores), False, qctx, fam.code, f"{fam.code}/{issue}"))
            title, body, cores = _SPECS
            ctx["extras"] = rng.choice([", a USB-C cable", ", a power adapter", ", a mounting plate", ""])
            arts.append(_Article(f"{fam.code}-{var.suffix}-specs".lower(), "hardware",
                                 _fill(rng, title, ctx), _body(rng, "hardware", body, ctx),
                                 list(cores), False, qctx, fam.code, f"{fam.code}/specs"))
        for ecode, meaning, what, fix in fam.error_codes:
            ctx = {"code": fam.code, "name": fam.name, "ecode": ecode, "meaning": meaning,
                   "what": what, "fix": fix, "brand": _BRANDS[fam.code]}
            num = ecode.split("-")[1]
            qctx = {"ec": _alt([ecode.lower(), f"e{num}", f"error {num}", f"e {num}"]),
                    "desc": _ERROR_WORDS[ecode]}
            arts.append(_Article(f"{fam.code}-{ecode}".lower(), "hardware",
                                 _fill(rng, _ERROR_TITLE, ctx), _body(rng, "hardware", _ERROR_BODY, ctx),
                                 list(_ERROR_CORES), False, qctx, fam.code, None))
        ver = f"{rng.randint(2, 5)}.{rng.randint(0, 9)}.{rng.randint(0, 20)}"
        ctx = {"code": fam.code, "name": fam.name, "ver": ver, "days": str(rng.choice([7, 10, 14])),
               "brand": _BRANDS[fam.code]}
        arts.append(_Article(f"{fam.code}-release-notes".lower(), "hardware",
                             _fill(rng, _RELEASE_NOTES[0], ctx),
                             _body(rng, "hardware", _RELEASE_NOTES[1], ctx), [], False, {},
                             fam.code, None))
    return arts


def _noise(rng: random.Random, text: str) -> str:
    """Make a clean phrasing look typed by a customer."""
    out = []
    for w in text.split(" "):
        lw = w.lower()
        if lw in _MISSPELL and rng.random() < 0.45:
            w = rng.choice(_MISSPELL[lw])
        elif len(w) >= 6 and w.isalpha() and rng.random() < 0.06:  # swap two letters
            i = rng.randrange(1, len(w) - 2)
            w = w[:i] + w[i + 1] + w[i] + w[i + 2:]
        out.append(w)
    text = " ".join(out)
    if rng.random() < 0.6:
        text = text.replace("'", "")
    if rng.random() < 0.4:
        text = rng.choice(_CONTEXT) + text
    else:
        text = rng.choice(_PREFIXES) + text
    text += rng.choice(_SUFFIXES)
    r = rng.random()
    if r < 0.78:
        text = text.lower()
    elif r < 0.93:
        text = text[:1].upper() + text[1:]
    return text


_HAS_DET = re.compile(r"\b(the|my|our|a|an)\s+\{s\}")


def _device(rng: random.Random, art: _Article) -> tuple[str, bool, bool]:
    """How the customer names the device: (words, names a code, family only)."""
    fam = next(f for f in _FAMILIES if f.code == art.family)
    suffix = art.ctx.get("variant")
    r = rng.random()
    if suffix is None:  # family-level article (error codes)
        if r < 0.35:
            return rng.choice(fam.slang), False, False
        return rng.choice(_sku_forms(fam.code, None)), True, False
    var = next(v for v in fam.variants if v.suffix == suffix)
    if r < 0.10:  # no variant given: every variant's article answers it
        return rng.choice(_sku_forms(fam.code, None)), True, True
    if r < 0.50:  # described, not named: "receipt printer (the bluetooth one)"
        slang, hint = rng.choice(fam.slang), rng.choice(var.hints)
        return rng.choice([f"{slang}, the {hint}", f"{slang} (the {hint})", f"{slang} {hint}"]), False, False
    if r < 0.60:
        return f"{rng.choice(_sku_forms(fam.code, None))} {rng.choice(var.hints)}", True, False
    return rng.choice(_sku_forms(fam.code, suffix)), True, False


def _render(rng: random.Random, art: _Article, core: str) -> tuple[str, bool, bool]:
    """One customer query from ``core`` for ``art``: (text, jargon, family_only)."""
    jargon = core.startswith("!")
    core = core.lstrip("!")
    ctx = dict(art.ctx)
    family_only = False
    if "{s}" in core:
        s, coded, family_only = _device(rng, art)
        jargon = jargon or coded  # the query hinges on a SKU-like code
        if not _HAS_DET.search(core) and rng.random() < 0.6:
            s = rng.choice(["the ", "my ", "our "]) + s
        ctx["s"] = s
    text = re.sub(r"\s+", " ", _fill(rng, core, ctx)).strip()
    return _noise(rng, text), jargon, family_only


def _add_related(rng: random.Random, arts: list[_Article]) -> None:
    """End each article with two "Related articles" links, as help centres do: the most
    similar title in its product line (a near miss, more often than not) and a random one."""
    by_line: dict[str, list[_Article]] = {}
    for a in arts:
        by_line.setdefault(a.line, []).append(a)
    words = {a.key: set(normalize_query(a.title).split()) for a in arts}
    for a in arts:
        others = [o for o in by_line[a.line] if o is not a]
        sim = max(others, key=lambda o: (len(words[a.key] & words[o.key])
                                         / len(words[a.key] | words[o.key]), rng.random()))
        rand = rng.choice([o for o in others if o is not sim])
        first, second = (sim, rand) if rng.random() < 0.5 else (rand, sim)
        a.text += f" Related articles: {first.title}; {second.title}."


def _zipf_frequencies(rng: random.Random, arts: list[_Article]) -> dict[str, int]:
    """Article-level traffic: head topics first, then a random order; Zipf over ranks."""
    order = sorted(arts, key=lambda a: (not a.head, rng.random()))
    return {a.key: max(1, round(50000 / (rank + 1) ** 1.35)) for rank, a in enumerate(order)}


def generate(out_dir: str | Path, seed: int = 0, n_products: int = len(_FAMILIES),
             n_train: int = 1300, n_dev: int = 150, n_test: int = 300,
             graded: bool = True) -> Path:
    """Write the synthetic help-centre KB as a BEIR folder under ``out_dir``; return it.

    ``n_products`` is the number of hardware device families (each with 2-3 SKU
    variants, 1 to 10); it scales the corpus. ``n_train``/``n_dev``/``n_test`` are upper
    bounds on the queries per split (they are reached with the defaults).
    """
    if not 1 <= n_products <= len(_FAMILIES):
        raise ValueError(f"n_products must be in 1..{len(_FAMILIES)}, got {n_products}")
    rng = random.Random(f"embexp-quickstart:{seed}")
    arts = _build_articles(rng, n_products)
    _add_related(rng, arts)
    rng.shuffle(arts)
    ids = {a.key: f"kb-{i + 1:04d}" for i, a in enumerate(arts)}
    groups: dict[str, list[str]] = {}
    for a in arts:
        if a.group:
            groups.setdefault(a.group, []).append(a.key)
    traffic = _zipf_frequencies(rng, arts)

    seen: set[str] = set()

    def make(art: _Article, core: str, tries: int = 8):
        for _ in range(tries):
            text, jargon, fam_only = _render(rng, art, core)
            norm = normalize_query(text)
            if norm and norm not in seen:
                seen.add(norm)
                if fam_only:  # "my tx-4410 wont pair": every variant's article answers it
                    rel = {k: 1 for k in groups[art.group]}
                else:
                    rel = {art.key: 2 if graded else 1}
                return {"text": text, "jargon": jargon, "rel": rel, "art": art.key}
        return None

    # Held-out core per article (test/dev phrasing); the rest are train phrasings.
    asked = [a for a in arts if len(a.cores) >= 2]
    held: dict[str, str] = {}
    train_cores: dict[str, list[str]] = {}
    for a in asked:
        cores = list(a.cores)
        rng.shuffle(cores)
        # Keep test learnable: a hand-written article's only jargon phrasing stays in train
        # (templated and device articles share their jargon with sibling articles).
        if not a.ctx and sum(c.startswith("!") for c in cores) == 1 and cores[0].startswith("!"):
            cores.append(cores.pop(0))
        held[a.key], train_cores[a.key] = cores[0], cores[1:]

    test_arts = rng.sample(asked, min(n_test, len(asked)))
    dev_arts = rng.sample(asked, min(n_dev, len(asked)))
    split_rows: dict[str, list[dict]] = {"test": [], "dev": [], "train": []}
    for split, chosen in (("test", test_arts), ("dev", dev_arts)):
        for a in chosen:
            q = make(a, held[a.key])
            if q:
                split_rows[split].append(q)
    # Train: round-robin over articles, one phrasing per article per round.
    pool = list(asked)
    rng.shuffle(pool)
    rnd = 0
    while len(split_rows["train"]) < n_train and rnd < 12:
        added = 0
        for a in pool:
            if len(split_rows["train"]) >= n_train:
                break
            cores = train_cores[a.key]
            q = make(a, cores[rnd % len(cores)])
            if q:
                split_rows["train"].append(q)
                added += 1
        if not added:
            break
        rnd += 1

    # Ids and frequencies: queries of one article share its traffic, Zipf within.
    per_art: dict[str, list[dict]] = {}
    for split in ("train", "dev", "test"):
        for q in split_rows[split]:
            per_art.setdefault(q["art"], []).append(q)
    for key, qs in per_art.items():
        rng.shuffle(qs)
        weights = [1 / (i + 1) ** 1.3 for i in range(len(qs))]
        total = sum(weights)
        for q, w in zip(qs, weights):
            q["frequency"] = max(1, round(traffic[key] * w / total * rng.uniform(0.7, 1.3)))

    all_rows = split_rows["train"] + split_rows["dev"] + split_rows["test"]
    rng.shuffle(all_rows)
    for i, q in enumerate(all_rows):
        q["_id"] = f"q-{i + 1:05d}"

    out = Path(out_dir)
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    corpus_lines = [json.dumps({"_id": ids[a.key], "title": a.title, "text": a.text,
                                "metadata": {"product_line": a.line}}, ensure_ascii=False)
                    for a in sorted(arts, key=lambda a: ids[a.key])]
    _write(out / "corpus.jsonl", "".join(line + "\n" for line in corpus_lines))
    query_lines = [json.dumps({"_id": q["_id"], "text": q["text"], "frequency": q["frequency"],
                               "slices": ["jargon"] if q["jargon"] else []}, ensure_ascii=False)
                   for q in sorted(all_rows, key=lambda q: q["_id"])]
    _write(out / "queries.jsonl", "".join(line + "\n" for line in query_lines))
    for split, rows in split_rows.items():
        lines = ["query-id\tcorpus-id\tscore"]
        for q in sorted(rows, key=lambda q: q["_id"]):
            for key, score in sorted(q["rel"].items(), key=lambda kv: ids[kv[0]]):
                lines.append(f"{q['_id']}\t{ids[key]}\t{score}")
        _write(out / "qrels" / f"{split}.tsv", "\n".join(lines) + "\n")

    n_jargon = sum(q["jargon"] for q in all_rows)
    lines_count = {pl: sum(a.line == pl for a in arts) for pl in PRODUCT_LINES}
    readme = [
        "# Lumio help centre (synthetic quickstart data)",
        "",
        "Synthetic: a made-up company's help-centre articles and customer queries, generated by",
        f"`python -m embexp.data.quickstart OUT --seed {seed}` (embexp.data.quickstart, seed {seed},",
        f"n_products {n_products}). Not real support data; any resemblance is for realism only.",
        "",
        f"- corpus: {len(arts)} articles ("
        + ", ".join(f"{pl} {n}" for pl, n in lines_count.items()) + ")",
        f"- queries: {len(all_rows)} (train {len(split_rows['train'])}, dev {len(split_rows['dev'])}, "
        f"test {len(split_rows['test'])}); jargon slice: {n_jargon}",
        "- qrels: score 2 = the article the query was written for, 1 = also answers it "
        "(device family without a variant)" if graded else "- qrels: binary (score 1)",
        "- queries.jsonl `frequency`: how often customers ask it (Zipf-like head/tail)",
        "",
    ]
    _write(out / "README.md", "\n".join(readme))
    return out


def _write(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m embexp.data.quickstart",
        description="Write the synthetic help-centre knowledge base (BEIR format) to OUT.")
    parser.add_argument("out", metavar="OUT", help="output folder (created if missing)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--n-products", type=int, default=len(_FAMILIES),
                        help=f"hardware device families, 1..{len(_FAMILIES)} (default {len(_FAMILIES)})")
    args = parser.parse_args(argv)
    try:
        out = generate(args.out, seed=args.seed, n_products=args.n_products)
    except ValueError as e:
        parser.error(str(e))
    print((out / "README.md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
