"""Handwritten GSM8K-format cases (commas, currency, decimals), labelled by hand."""
G = "handwritten GSM8K format"

def c(det, label, prompt, reference, text, raw_text=None, note="", source=G):
    d = {"source": source, "prompt": prompt, "reference": reference, "text": text, "label": {det: label}, "note": note}
    if raw_text is not None:
        d["raw_text"] = raw_text
    return d

HOUSE_P = "Josh buys a house for $80,000 and puts in $50,000 in repairs. This increased the value of the house by 150%. How much profit did he make?"
HOUSE_R = ("The cost of the house and repairs came out to 80,000+50,000=$<<80000+50000=130000>>130,000\n"
           "He increased the value of the house by 80,000*1.5=<<80000*1.5=120000>>120,000\n"
           "So the new value of the house is 120,000+80,000=$<<120000+80000=200000>>200,000\n"
           "So he made a profit of 200,000-130,000=$<<200000-130000=70000>>70,000\n#### 70000")
SPRINT_P = "James runs 3 sprints 3 times a week. He runs 60 meters each sprint. How many total meters does he run a week?"
SPRINT_R = "He sprints 3*3=<<3*3=9>>9 times\nSo he runs 9*60=<<9*60=540>>540 meters\n#### 540"
WAGE_P = "Mia earns $12.50 an hour and works 40 hours a week. How much does she earn in 4 weeks?"
WAGE_R = "Each week she earns 12.50*40=$<<12.5*40=500>>500.\nIn 4 weeks she earns 500*4=$<<500*4=2000>>2,000.\n#### 2000"
TICKET_P = "A concert sold 1,200 tickets at $25 each and paid $6,000 for the hall. What was the profit?"
TICKET_R = "Ticket sales were 1,200*25=$<<1200*25=30000>>30,000.\nThe profit is 30,000-6,000=$<<30000-6000=24000>>24,000.\n#### 24000"
BOOK_P = "A library has 300 books on each of 4 shelves. It lends out 150 books. How many books are left?"
BOOK_R = "There are 300*4=<<300*4=1200>>1200 books.\nAfter lending, 1200-150=<<1200-150=1050>>1050 books are left.\n#### 1050"
FRUIT_P = "Ann buys 3 bags of apples at $1.25 a bag and a melon for $2.40. How much does she spend?"
FRUIT_R = "The apples cost 3*1.25=$<<3*1.25=3.75>>3.75.\nIn total she spends 3.75+2.40=$<<3.75+2.40=6.15>>6.15.\n#### 6.15"
FARM_P = "A farm has 135 cows. Each cow gives 20 liters of milk a day. How much milk do the cows give in a week?"
FARM_R = "Each day the cows give 135*20=<<135*20=2700>>2700 liters.\nIn a week that is 2700*7=<<2700*7=18900>>18,900 liters.\n#### 18900"
TIME_P = "A movie is 2 hours long. How many seconds is that?"
TIME_R = "2 hours is 2*60=<<2*60=120>>120 minutes.\n120 minutes is 120*60=<<120*60=7200>>7200 seconds.\n#### 7200"
SAVE_P = "Tom saves $15 a week for 10 weeks, then spends $45 on a game. How much does he have left?"
SAVE_R = "He saves 15*10=$<<15*10=150>>150.\nAfter the game he has 150-45=$<<150-45=105>>105 left.\n#### 105"

CASES = [
    # ---- trailing-zero: positives
    c("trailing-zero", True, HOUSE_P, HOUSE_R, "The cost is 80,000+50,000=$13,000.\nThe new value is 120,000+80,000=$200,000.\nThe profit is 200,000-13,000=$187,000.\n#### 187000", note="130,000 written 13,000"),
    c("trailing-zero", True, HOUSE_P, HOUSE_R, "So he made a profit of 200,000-130,000=$7,000\n#### 7000", note="70,000 -> 7,000"),
    c("trailing-zero", True, WAGE_P, WAGE_R, "Each week she earns 12.50*40=$50.\nIn 4 weeks she earns 50*4=$200.\n#### 200", note="500 -> 50 and 2,000 -> 200"),
    c("trailing-zero", True, WAGE_P, WAGE_R, "Each week she earns 12.50*40=$500. In 4 weeks she earns $2,00.\nThe answer is 200", note="2,000 -> '2,00'"),
    c("trailing-zero", True, TICKET_P, TICKET_R, "Ticket sales were 1,200*25=$3,000.\nThe profit is 30,000-6,000=$24,000.\n#### 24000", note="30,000 -> 3,000"),
    c("trailing-zero", True, TICKET_P, TICKET_R, "Ticket sales were $30,000. The profit is $2,400.\n#### 2400"),
    c("trailing-zero", True, BOOK_P, BOOK_R, "There are 300*4=120 books.\nAfter lending, 120-150 ... #### 0", note="1200 -> 120"),
    c("trailing-zero", True, FARM_P, FARM_R, "Each day the cows give 135*20=270 liters. In a week 270*7=1890 liters.\n#### 1890", note="2700 -> 270, 18,900 -> 1890"),
    c("trailing-zero", True, TIME_P, TIME_R, "2 hours is 2*60=120 minutes, which is 120*60=720 seconds.\n#### 720"),
    c("trailing-zero", True, TIME_P, TIME_R, "2*60=12 minutes\n12*60=720 seconds\nThe answer is 720", note="120 -> 12 (prompt has no 12)"),
    c("trailing-zero", False, SAVE_P, SAVE_R, "He saves 15*10=$15.\nHe has 15-45... so $15 left.\n#### 15", note="150 -> 15, but the prompt itself uses 15: not counted by definition"),
    # ---- trailing-zero: negatives
    c("trailing-zero", False, HOUSE_P, HOUSE_R, "80,000+50,000=$130,000\n80,000*1.5=$120,000\n120,000+80,000=$200,000\n200,000-130,000=$70,000\n#### 70000", note="correct"),
    c("trailing-zero", False, HOUSE_P, HOUSE_R, "The profit is $70,000 or 70000 dollars.\nThe answer is 70,000"),
    c("trailing-zero", False, SPRINT_P, SPRINT_R, "He sprints 3*3=9 times, 60 meters each, so 9*60=540 meters.\n#### 540"),
    c("trailing-zero", False, SPRINT_P, SPRINT_R, "He runs 3*60=180 meters a day, 180*3=540.\n#### 540", note="180 is no reference number without zeros"),
    c("trailing-zero", False, WAGE_P, WAGE_R, "She earns $12.50*40 = $500 a week, and 4*500 = $2000.\n#### 2,000"),
    c("trailing-zero", True, WAGE_P, WAGE_R, "She earns 12.5*40=$5.00 a week\n#### 20", note="2,000 -> 20 (two zeros); 5.00 is a lone digit and not counted"),
    c("trailing-zero", False, TICKET_P, TICKET_R, "Sales: 1,200 tickets * $25 = $30,000. Costs: $6,000. Profit: $24,000.\n#### 24000"),
    c("trailing-zero", False, TICKET_P, TICKET_R, "1,200*25 = 32,000 dollars, minus 6,000 is 26,000.\n#### 26000", note="wrong but no zeros dropped"),
    c("trailing-zero", False, BOOK_P, BOOK_R, "There are 300*4=1200 books. 1200-150=1050.\n#### 1050"),
    c("trailing-zero", False, BOOK_P, BOOK_R, "300+4=304 books, 304-150=154 left.\n#### 154"),
    c("trailing-zero", False, FRUIT_P, FRUIT_R, "The apples cost 3*1.25=$3.75. Total 3.75+2.40=$6.15.\n#### 6.15"),
    c("trailing-zero", False, FRUIT_P, FRUIT_R, "3*1.25=$3.75; 3.75+2.4=$6.15\nThe answer is $6.15", note="2.40 written 2.4: same value"),
    c("trailing-zero", False, TIME_P, TIME_R, "2 hours = 120 minutes = 7,200 seconds.\n#### 7200"),
]

E, T = "<|endoftext|>", "<|eot_id|>"
CASES += [
    # ---- repeated-token
    c("repeated-token", True, SPRINT_P, SPRINT_R, "He sprints 3*3=9 9 times\nSo he runs 9*60=540 meters\n#### 540", note="'9 9 times' is no chained equation"),
    c("repeated-token", True, HOUSE_P, HOUSE_R, "So the the new value of the house is 120,000+80,000=$200,000\n#### 70000"),
    c("repeated-token", True, HOUSE_P, HOUSE_R, "The house is worth 120,000 120,000 more after repairs.\n#### 70000"),
    c("repeated-token", True, SPRINT_P, SPRINT_R, "He sprints 3*3=9 times\nSo he runs 9*60=540 meters\n##### 540", note="five #"),
    c("repeated-token", True, TIME_P, TIME_R, "2 hours is 2*60==120 minutes\n120*60=7200\n#### 7200"),
    c("repeated-token", True, SPRINT_P, SPRINT_R, "He runs 3*3*3*3=81 sprints\n#### 4860"),
    c("repeated-token", True, WAGE_P, WAGE_R, "In 4 weeks weeks she earns 500*4=$2,000.\n#### 2000"),
    c("repeated-token", True, WAGE_P, WAGE_R, "She earns earns 12.50*40=$500 a week.\n#### 2000"),
    c("repeated-token", True, TICKET_P, TICKET_R, "Ticket sales were 1,200*25*25=$30,000.\n#### 24000"),
    c("repeated-token", True, TICKET_P, TICKET_R, "The profit is is $24,000.\n#### 24000"),
    c("repeated-token", False, SPRINT_P, SPRINT_R, "He sprints 3*3=9 times\nSo he runs 9*60=540 meters\n#### 540"),
    c("repeated-token", False, SPRINT_P, SPRINT_R, "He sprints 3*3=<<3*3=9>>9 times\nSo he runs 9*60=<<9*60=540>>540 meters\n#### 540", note="calculator annotations: 9>>9 is no repeat"),
    c("repeated-token", False, TIME_P, TIME_R, "2 hours is 2*60=120 120*60=7200 seconds.\n#### 7200", note="chained equations"),
    c("repeated-token", False, SAVE_P, SAVE_R, "He saves 15*10=150 dollars. 150-45=105.\n#### 105"),
    c("repeated-token", False, FRUIT_P, FRUIT_R, "She pays $3.75 for apples and $2.40 for the melon, $6.15 in all.\n#### 6.15"),
    c("repeated-token", False, HOUSE_P, HOUSE_R, "Costs: 80,000 + 50,000 = 130,000. Value: 80,000 * 2.5 = 200,000. Profit: 70,000.\n#### 70000"),
    c("repeated-token", False, BOOK_P, BOOK_R, "Books: 300, 300, 300 and 300 make 1200. Left: 1050.\n#### 1050", note="a list: separated by commas"),
    c("repeated-token", False, TICKET_P, TICKET_R, "Hmm... 1,200 tickets times $25 is $30,000, less $6,000 is $24,000.\n#### 24000", note="an ellipsis"),
    c("repeated-token", False, WAGE_P, WAGE_R, "She earns $500 each week, so in 4 weeks she earns $2,000.\nThe answer is 2000"),
    c("repeated-token", False, FARM_P, FARM_R, "135 cows * 20 liters = 2700 liters a day; 2700 * 7 = 18,900 liters.\n#### 18900"),
    # ---- misplaced-char
    c("misplaced-char", True, FRUIT_P, FRUIT_R, "The apples cost 3*12.5=$3.75.\n#### 6.15", note="1.25 -> 12.5"),
    c("misplaced-char", True, FARM_P, FARM_R, "Each day 153 cows give 153*20=2700 liters.\n#### 18900", note="135 -> 153"),
    c("misplaced-char", True, FRUIT_P, FRUIT_R, "In total she spends 3.75+2.40=$6.51.\n#### 6.51"),
    c("misplaced-char", True, FRUIT_P, FRUIT_R, "The apples cost 3*1.25=$3.57.\n#### 5.97"),
    c("misplaced-char", True, SPRINT_P, SPRINT_R, "He runs 9 sprnits of 60 meters: 540 meters.\n#### 540"),
    c("misplaced-char", True, SPRINT_P, SPRINT_R, "So he runs 9*60=540 meetrs\n#### 540"),
    c("misplaced-char", True, TICKET_P, TICKET_R, "The profit is 30,000-6,000=$42,000.\n#### 42000", note="24,000 -> 42,000"),
    c("misplaced-char", True, FARM_P, FARM_R, "Each day the cows give 135*20=7200 liters.\n#### 50400", note="2700 -> 7200"),
    c("misplaced-char", True, SPRINT_P, SPRINT_R, "So he runs 9*60=504 meters\n#### 504"),
    c("misplaced-char", True, TIME_P, TIME_R, "2 hours is 2*60=210 minutes.\n#### 12600", note="120 -> 210"),
    c("misplaced-char", False, FRUIT_P, FRUIT_R, "The apples cost 3*1.25=$3.75. In total 3.75+2.40=$6.15.\n#### 6.15"),
    c("misplaced-char", False, SPRINT_P, SPRINT_R, "So he runs 9*60=550 meters\n#### 550", note="a substitution, not a move"),
    c("misplaced-char", False, SPRINT_P, SPRINT_R, "So he runs 9*60=5400 meters\n#### 5400", note="an insertion"),
    c("misplaced-char", False, FARM_P, FARM_R, "135*20=2,700 liters a day and 18,900 liters a week.\n#### 18900", note="commas only"),
    c("misplaced-char", False, TIME_P, TIME_R, "2 hours = 120 minutes = 7,200 seconds.\n#### 7200"),
    c("misplaced-char", False, HOUSE_P, HOUSE_R, "He saw a profit of $70,000 on the house.\n#### 70000", note="'saw' is not one swap from 'was'"),
    c("misplaced-char", False, SAVE_P, SAVE_R, "He saves 15 dollars for 10 weeks: 150. Then 150-45=105.\n#### 105"),
    c("misplaced-char", False, TICKET_P, TICKET_R, "Sales 1,200*25=$30,000; profit $24,000.\n#### 24000"),
    c("misplaced-char", False, WAGE_P, WAGE_R, "She makes 12.5*40=500 a week, 2000 in 4 weeks.\n#### 2000"),
    c("misplaced-char", False, BOOK_P, BOOK_R, "There are 1,200 books and 1,050 are left.\n#### 1050"),
    # ---- shift-artifact
    c("shift-artifact", True, SPRINT_P, SPRINT_R, "He sprints 3*3=9 times\nSo he runs 9*60=5540 meters\n#### 5540", note="a 5 inserted"),
    c("shift-artifact", True, SPRINT_P, SPRINT_R, "He sprints 3*3=9 times\nSo he runs 9*6=540 meters\n#### 540", note="the 0 of 60 dropped"),
    c("shift-artifact", True, HOUSE_P, HOUSE_R, "The cost of the house and repairs came out to 80,000+50,000=$130,00\nHe increased the value", note="a 0 dropped"),
    c("shift-artifact", True, HOUSE_P, HOUSE_R, "So the new valuue of the house is 120,000+80,000=$200,000\n#### 70000"),
    c("shift-artifact", True, HOUSE_P, HOUSE_R, "So he madea profit of 200,000-130,000=$70,000\n#### 70000", note="a space dropped"),
    c("shift-artifact", True, FARM_P, FARM_R, "Each day the cows give 135*20=27000 liters.\n#### 189000"),
    c("shift-artifact", True, WAGE_P, WAGE_R, "Each week she earns 12.50*40=$500.\nIn 4 weeks she earns 500*4=$2,0000.\n#### 2000"),
    c("shift-artifact", True, BOOK_P, BOOK_R, "There are 300*4=1200 books.\nAfter lending, 1200-15=1050 books are left.\n#### 1050"),
    c("shift-artifact", True, TIME_P, TIME_R, "2 hours is 2*60=120 minutes.\n120 minutes is 120*600=7200 seconds.\n#### 7200"),
    c("shift-artifact", True, SAVE_P, SAVE_R, "He saves 15*10=$150.\nAfter the game he has 150-45=$1055 left.\n#### 1055"),
    c("shift-artifact", False, SPRINT_P, SPRINT_R, "He sprints 3*3=9 times\nSo he runs 9*60=540 meters\n#### 540"),
    c("shift-artifact", False, SPRINT_P, SPRINT_R, "So he runs 9*60=550 meters\n#### 550", note="a substitution"),
    c("shift-artifact", False, SPRINT_P, SPRINT_R, "The answer is 540."),
    c("shift-artifact", False, HOUSE_P, HOUSE_R, "He spent $130,000 and sold it for $200,000, a profit of $70,000.\n#### 70000"),
    c("shift-artifact", False, HOUSE_P, HOUSE_R, "He increased the value of the house by 80,000*1.5=120,000\n#### 70000", note="annotations dropped only"),
    c("shift-artifact", False, WAGE_P, WAGE_R, "Each week she earns 12.50*40=$600.\n#### 2400", note="a substitution"),
    c("shift-artifact", False, FRUIT_P, FRUIT_R, "3.75+2.40=6.15\n#### 6.15"),
    c("shift-artifact", False, FARM_P, FARM_R, "In a week that is 2700*7=18,900 liters.\n#### 18900"),
    c("shift-artifact", False, BOOK_P, BOOK_R, "Shelves hold 4*300 books = 1200; minus 150 gives 1050.\n#### 1050"),
    c("shift-artifact", False, TICKET_P, TICKET_R, "The profit is 30,000-6,000=$24,000.\n#### 24000"),
    # ---- slack-leak
    c("slack-leak", True, SPRINT_P, SPRINT_R, "He sprints 3*3=9<slack> times\n#### 540"),
    c("slack-leak", True, SPRINT_P, SPRINT_R, "So he runs 9*60=5<slack>40 meters\n#### 5<slack>40"),
    c("slack-leak", True, TIME_P, TIME_R, "<slack><slack>2*60=120\n#### 7200"),
    c("slack-leak", True, WAGE_P, WAGE_R, "#### 2,00<slack>0"),
    c("slack-leak", True, BOOK_P, BOOK_R, "There are 300*4=1200 books.<slack>"),
    c("slack-leak", False, SPRINT_P, SPRINT_R, "He sprints 3*3=9 times\n#### 540", raw_text="He sprints 3*3=9 times\n#### 54<slack>0<|endoftext|>", note="raw has <slack>, text is collapsed"),
    c("slack-leak", False, HOUSE_P, HOUSE_R, "There was some slack in the budget, so the profit is $70,000.\n#### 70000"),
    c("slack-leak", False, TIME_P, TIME_R, "2*60=120 [MASK] 120*60=7200\n#### 7200"),
    c("slack-leak", False, BOOK_P, BOOK_R, "#### 1050"),
    c("slack-leak", False, FRUIT_P, FRUIT_R, "<s> 3*1.25=3.75 </s>\n#### 6.15"),
    # ---- eos-truncation
    c("eos-truncation", True, SPRINT_P, SPRINT_R, "He sprints 3*3=9 times\nSo he runs 9*60=", raw_text="He sprints 3*3=9 times\nSo he runs 9*60=" + E * 6),
    c("eos-truncation", True, SPRINT_P, SPRINT_R, "He sprints 3*3=9 times\nSo he runs 9*60=540 meters", raw_text="He sprints 3*3=9 times\nSo he runs 9*60=540 meters" + T + "\n#### 540" + T * 3, note="answer written after EOS"),
    c("eos-truncation", True, HOUSE_P, HOUSE_R, "", raw_text=E * 30, note="EOS first"),
    c("eos-truncation", True, HOUSE_P, HOUSE_R, "So he made a profit of", raw_text="So he made a profit of" + E + E),
    c("eos-truncation", True, WAGE_P, WAGE_R, "Each week she earns 12.50*40=$500.\nIn 4 weeks she earns 500*4=$2,000", raw_text="Each week she earns 12.50*40=$500.\nIn 4 weeks she earns 500*4=$2,000" + E * 4),
    c("eos-truncation", False, SPRINT_P, SPRINT_R, "He sprints 3*3=9 times\nSo he runs 9*60=540 meters\n#### 540", raw_text="He sprints 3*3=9 times\nSo he runs 9*60=540 meters\n#### 540" + E * 5),
    c("eos-truncation", False, SPRINT_P, SPRINT_R, "So he runs 540 meters. The answer is 540.", raw_text="So he runs 540 meters. The answer is 540." + T + E * 3),
    c("eos-truncation", False, SPRINT_P, SPRINT_R, "He sprints 3*3=9 times\nSo he runs 9*60=", raw_text="He sprints 3*3=9 times\nSo he runs 9*60=", note="no EOS: the canvas ran out"),
    c("eos-truncation", False, TIME_P, TIME_R, "A 2 hour movie lasts 7,200 seconds.", raw_text="A 2 hour movie lasts 7,200 seconds." + E * 9, note="a finished sentence"),
    c("eos-truncation", False, BOOK_P, BOOK_R, "1200-150=1050\n#### 1050", raw_text="1200-150=1050\n#### 1050", note="no EOS"),
]

CASES += [
    c("misplaced-char", True, BOOK_P, BOOK_R, "There are 300*4=1200 books.\nAfter lending, 1200-150=1500 books are left.\n#### 1500", note="1050 -> 1500"),
    c("misplaced-char", True, HOUSE_P, HOUSE_R, "He increased the value of the house by 80,000*1.5=$12,0000\n#### 70000", note="120,000 -> 12,0000 (comma moved)"),
    c("misplaced-char", True, WAGE_P, WAGE_R, "Each week she earns 1.250*40=$500.\n#### 2000", note="12.50 -> 1.250"),
    c("misplaced-char", True, SAVE_P, SAVE_R, "After the game he has 150-45=$150 left? No: 150-54=96.\n#### 96", note="45 -> 54"),
    c("misplaced-char", True, TIME_P, TIME_R, "2 hours is 2*60=120 mintues.\n#### 7200", note="minutes -> mintues"),
    c("misplaced-char", True, FARM_P, FARM_R, "In a week that is 2700*7=18,900 litres.\n#### 18900", note="liters -> litres"),
    c("shift-artifact", True, TICKET_P, TICKET_R, "Ticket sales were 1,200*25=$30,000.\nThe profit is 30,000-6,000=$24,0000.\n#### 24000"),
    c("shift-artifact", True, FRUIT_P, FRUIT_R, "The apples cost 3*1.25=$3.75.\nIn total she spends 3.75+2.40=$6.1.\n#### 6.1"),
    c("slack-leak", True, FARM_P, FARM_R, "Each day the cows give 135*20=27<slack>00 liters."),
    c("slack-leak", True, SAVE_P, SAVE_R, "He saves 15*10=$150.\nAfter the game he has 150-45=$105 left.\n#### 105<slack>"),
    c("eos-truncation", True, FARM_P, FARM_R, "Each day the cows give 135*20=2700 liters.\nIn a week that is", raw_text="Each day the cows give 135*20=2700 liters.\nIn a week that is" + E * 12),
    c("eos-truncation", True, FRUIT_P, FRUIT_R, "The apples cost 3*1.25=$3.75.\nIn total she spends 3.75+2.40=$6.15", raw_text="The apples cost 3*1.25=$3.75.\nIn total she spends 3.75+2.40=$6.15" + T + "\nThe answer is 6.15" + T, note="answer after EOS"),
    c("eos-truncation", False, FARM_P, FARM_R, "Each day the cows give 2700 liters, so 18,900 liters a week.", raw_text="Each day the cows give 2700 liters, so 18,900 liters a week." + E),
]

# ---- trailing-zero on few-shot GSM8K prompts (lm-eval's format: "Question: ...\nAnswer: ..." exemplars, then
# the question). The exemplars are written for these cases; their numbers (24, 5, 90, 120, 30, 45, 180, 4, 6,
# 12, 50, 72, 122) must not hide a drop, and a final answer that lost zeros counts whatever its length.
FS = "handwritten GSM8K few-shot prompt"
SHOTS = ("Question: A baker makes 24 muffins an hour for 5 hours and sells 90 of them. How many muffins are left?\n"
         "Answer: He makes 24*5=<<24*5=120>>120 muffins.\nAfter selling, 120-90=<<120-90=30>>30 are left.\n#### 30\n\n"
         "Question: A school bus holds 45 students. How many buses are needed for 180 students?\n"
         "Answer: They need 180/45=<<180/45=4>>4 buses.\n#### 4\n\n"
         "Question: Paul buys 6 shirts at $12 each and a jacket for $50. How much does he spend?\n"
         "Answer: The shirts cost 6*12=$<<6*12=72>>72.\nIn total he spends 72+50=$<<72+50=122>>122.\n#### 122\n\n")


def fewshot(q, fmt="plain"):
    """The prompt as the record stores it: plain, under LLaDA's or Qwen's (Dream's) chat template, or cut from the left."""
    body = SHOTS + f"Question: {q}\nAnswer:"
    if fmt == "llada":
        return f"<|startoftext|><|start_header_id|>user<|end_header_id|>\n\n{body}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    if fmt == "qwen":
        return (f"<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n{body}<|im_end|>\n"
                "<|im_start|>assistant\n")
    if fmt == "cut":
        return body[body.index("6*12"):]
    return body


SEATS_Q = "A theater has 25 rows of 36 seats. How many seats are there?"
SEATS_R = "There are 25*36=<<25*36=900>>900 seats.\n#### 900"
CANS_Q = "Each of 4 classes collects 125 cans. How many cans do they collect in total?"
CANS_R = "They collect 4*125=<<4*125=500>>500 cans.\n#### 500"
MARBLE_Q = "Liam has 80 marbles and gives away 3/4 of them. How many marbles does he keep?"
MARBLE_R = "He gives away 80*3/4=<<80*3/4=60>>60 marbles.\nHe keeps 80-60=<<80-60=20>>20 marbles.\n#### 20"
PRINT_Q = "A printer prints 40 pages a minute for 30 minutes, then 300 more pages. How many pages does it print?"
PRINT_R = "In 30 minutes it prints 40*30=<<40*30=1200>>1200 pages.\nIn all it prints 1200+300=<<1200+300=1500>>1500 pages.\n#### 1500"
BOX_Q = "Sam has 30 boxes with 10 books in each. How many books does he have?"
BOX_R = "He has 30*10=<<30*10=300>>300 books.\n#### 300"
CRATE_Q = "Each of 5 crates holds 40 apples. How many apples are there?"
CRATE_R = "There are 5*40=<<5*40=200>>200 apples.\n#### 200"
TRIP_Q = "A trip is 410 km. Ella drives 205 km each day. How many days does the trip take?"
TRIP_R = "It takes 410/205=<<410/205=2>>2 days.\n#### 2"
FENCE_Q = "A fence has 8 sections of 125 boards. How many boards are there?"
FENCE_R = "There are 8*125=<<8*125=1000>>1000 boards.\n#### 1000"
GARDEN_Q = "A garden has 9 rows of 12 plants and 12 more plants by the gate. How many plants are there?"
GARDEN_R = "The rows hold 9*12=<<9*12=108>>108 plants.\nWith the gate plants there are 108+12=<<108+12=120>>120.\n#### 120"


def fs(label, q, r, text, fmt="plain", note=""):
    return c("trailing-zero", label, fewshot(q, fmt), r, text, note=note, source=f"{FS} ({fmt})")


CASES += [
    fs(True, SEATS_Q, SEATS_R, "There are 25*36=90 seats.\n#### 90", note="900 -> 90; 90 is an exemplar number"),
    fs(True, CANS_Q, CANS_R, "They collect 4*125=5 cans.\n#### 5", note="500 -> 5: a one-digit final answer"),
    fs(True, MARBLE_Q, MARBLE_R, "He gives away 80*3/4=60 marbles.\nHe keeps 80-60=2 marbles.\n#### 2", "llada", note="20 -> 2"),
    fs(True, PRINT_Q, PRINT_R, "In 30 minutes it prints 40*30=120 pages.\nIn all it prints 120+300=420 pages.\n#### 420",
       note="1200 -> 120 in the body; 120 is an exemplar number"),
    fs(True, FENCE_Q, FENCE_R, "There are 8*125=100 boards.\n#### 100", "qwen", note="1000 -> 100"),
    fs(True, SEATS_Q, SEATS_R, "25 rows of 36 seats make 25*36=9 hundred... The answer is 9", "qwen", note="900 -> 9 after 'The answer is'"),
    fs(True, CRATE_Q, CRATE_R, "There are 5*40=20 apples.\n#### 20", "cut", note="200 -> 20, prompt cut from the left"),
    fs(True, GARDEN_Q, GARDEN_R, "The rows hold 9*12=108 plants.\nWith the gate plants there are 108+12=12.\n#### 12", "llada",
       note="120 -> 12: the question uses 12, but the final answer lost a zero"),
    fs(True, CANS_Q, CANS_R, "They collect 4*125=50 cans.\n#### 50", "cut", note="500 -> 50; 50 is an exemplar number"),
    fs(True, FENCE_Q, FENCE_R, "There are 8*125=1000 boards... no, 8*125=10.\n# 10", note="1000 -> 10 after a merged '#'"),
    fs(False, SEATS_Q, SEATS_R, "There are 25*36=900 seats.\n#### 900", note="correct"),
    fs(False, BOX_Q, BOX_R, "He packs 30 boxes of 10 books: 30*10=300 books.\n#### 300", "llada", note="30 is in the question"),
    fs(False, CRATE_Q, CRATE_R, "5 crates of 40 apples is 5*40=200 apples, 2 hundred in all.\n#### 200",
       note="a lone 2 in the body does not count"),
    fs(False, SEATS_Q, SEATS_R, "There are 25*36=900 seats.\n#### 900\n\nQuestion: A box has 9 pens. How many pens?\nAnswer: #### 9",
       note="the final answer is 900; the 9 is in a made-up next question"),
    fs(False, GARDEN_Q, GARDEN_R, "The rows hold 9*12=108 plants, and 108+12=1200.\n#### 1200", "qwen", note="a zero added, not lost"),
    fs(False, TRIP_Q, TRIP_R, "It takes 410/205=2 days.\n#### 2", note="2 is the answer itself"),
    fs(False, PRINT_Q, PRINT_R, "In 30 minutes it prints 40*30=1200 pages, and 1200+300=1500 pages.\n#### 1500", "cut"),
    fs(False, MARBLE_Q, MARBLE_R, "He gives away 80*3/4=60 marbles and keeps 80-60=24.\n#### 24", "qwen", note="wrong, no zero lost"),
]
