"""Each section's key points (the speaker notes) and discussion questions, with what a good answer contains.

Keyed by notebook stem, then by the section's `## ` title without its number. Written from the notebooks' text;
answers claim only what the notebooks show in every seed of the claims sweep.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Question:
    ask: str
    good_answer: str


@dataclass(frozen=True)
class Section:
    key_points: tuple[str, ...]
    questions: tuple[Question, ...]


Q = Question

SECTIONS: dict[str, dict[str, Section]] = {
    "01_sae_theory": {
        "Why we need SAEs: superposition": Section(
            ("Polysemantic neurons: each coordinate responds to several features.",
             "Superposition: more sparse features than dimensions, so no linear readout separates them.",
             "Polysemantic neurons alone do not prove superposition: the 16-feature control is polysemantic too."),
            (Q("Why is the 16-features-in-16-dimensions control needed?",
               "It is polysemantic per neuron as well, yet a linear readout separates its features exactly (leak 0): "
               "so polysemanticity alone is not evidence of superposition; failure of every linear readout is."),
             Q("What does sparsity buy the model?",
               "Few features are active at once, so the small overlaps between almost-orthogonal directions rarely "
               "collide; dense features would interfere on most inputs."),
             Q("What can the toy not tell us about GPT-2?",
               "We put the features in by hand; it cannot show that a real model's neurons are polysemantic because of "
               "superposition, nor how many features a real model stores or in which directions."))),
        "The sparse autoencoder": Section(
            ("An SAE is an overcomplete sparse dictionary: encoder picks which directions, decoder columns are them.",
             "pre_bias is subtracted before encoding and added back after; decoder columns are kept at unit norm.",
             "ReLU + L1 is a soft sparsity penalty; TopK is a hard budget of k latents per input."),
            (Q("Why must the decoder columns be renormalised after every step?",
               "Otherwise the SAE lowers the L1 penalty for free by shrinking latents and growing decoder columns, "
               "with the same reconstruction."),
             Q("What does TopK change compared with ReLU + L1?",
               "L0 is set directly (k per input) and the loss is just the squared error; no coefficient to tune for "
               "sparsity, and no L1 pull on the values that stay."),
             Q("Why is the L1 penalty on the latents after the ReLU, not on the pre-activations?",
               "Negative pre-activations are already silent and cost nothing; penalising them would push the encoder "
               "for no sparsity gain."))),
        "Training SAEs on the toy": Section(
            ("Both ReLU + L1 and TopK recover the true features (best cosine above 0.9 in every seed).",
             "Three seeds per arm cannot rank two methods: identical arms separate about 1 time in 10.",
             "L0 and FVU are the proxies left when there is no answer key."),
            (Q("Why can three seeds not say that TopK recovers better than ReLU here?",
               "With identical arms any ordering of six runs is equally likely and 2 of the 20 splits separate, so a "
               "3-vs-3 'clear' difference happens by chance about 1 time in 10 (the A/A comparison measures it)."),
             Q("What is the difference between feature recovery and FVU?",
               "Recovery compares decoder columns with the true features (needs the answer key); FVU only says how "
               "well the input is reconstructed, which a blend of features can do too."))),
        "The sparsity / reconstruction trade-off": Section(
            ("Larger alpha or smaller k lowers L0 and raises FVU, by more than the seed spread.",
             "The best reconstruction is not the best recovery: too many active latents blend features."),
            (Q("Why does alpha = 0.03 reconstruct best but recover worse?",
               "With many latents active per input the SAE can reconstruct with mixtures of features instead of "
               "matching each true feature with one latent."),
             Q("On GPT-2 there is no recovery score. How would you pick alpha or k?",
               "Look at L0 and FVU together along a sweep, then read the latents (notebook 02) and test them "
               "causally; never by FVU alone."))),
        "Dead latents and resampling": Section(
            ("A latent that never fires gets no gradient and stays dead.",
             "Resampling revives latents, but surplus latents die again: no clear difference at the end here.",
             "Count dead latents over several seeds before crediting a fix."),
            (Q("Why does resampling not help on this toy?",
               "With 128 latents for 32 features, about 96 latents have nothing to explain; a fresh direction cannot "
               "create work for them, so they die again."),
             Q("Where would you expect resampling to pay off?",
               "Where revived latents find unexplained structure: large SAEs on real activations with many features; "
               "notebook 05 measures it there."))),
        "Decoder orthogonality: a monitor, not a score": Section(
            ("Mean |cos| between decoder columns sits at the random level for good and mediocre SAEs alike.",
             "It rises far above that only when columns collapse: a health check, not a quality score."),
            (Q("Why can this number not rank SAEs?",
               "In 16 dimensions 64 unrelated directions overlap at the random level (about 0.2) whatever their "
               "quality; only collapse (copies, |cos| = 1) moves it."),
             Q("What failure does it catch, and how would it look in a training log?",
               "Columns collapsing onto a few directions: the value climbs well above sqrt(2/(pi d)) during "
               "training."))),
        "What this means for GPT-2": Section(
            ("Same picture at scale: d = 768, 32k or 128k TopK latents (k = 32) on standardised inputs.",
             "No ground truth: lean on L0, FVU, dead latents, reading latents and interventions."),
            (Q("Which of today's measurements survive on GPT-2, and which do not?",
               "L0, FVU, dead fraction and decoder orthogonality survive; feature recovery and MCC need the true "
               "features and do not."),
             Q("What replaces the answer key?",
               "Reading latents (top activations, logit effects) and testing them causally: patching (03) and "
               "steering (04)."))),
        "Summary": Section(
            ("Superposition; the SAE's forward pass and loss; judging SAEs over seeds; resampling and orthogonality.",),
            (Q("Summarise in two sentences what an SAE is for and how we know it worked on the toy.",
               "It turns superposed activations into a sparse set of latents that should match features; on the toy "
               "we know it worked because decoder columns match the true features (cosine above 0.9 in every seed)."),
             Q("Which habit from this notebook carries through the course?",
               "Several seeds per arm, and a difference called clear only when the ranges do not overlap."))),
    },
    "02_finding_features": {
        "The top latents at the last token": Section(
            ("top_features lists the latents active at one token (at most k).",
             "Top-k lists of positive and negative prompts can look alike; compare what differs.",
             "BOS is an outlier in GPT-2: every per-token statistic leaves it out."),
            (Q("Why are top-k lists a poor way to compare two prompts?",
               "They mix up which latents fire with how strongly; in the tiny world the three lists are the same ten "
               "latents in another order; the latents whose activation differs are where the prompts part ways."),
             Q("Why leave BOS out, and what goes wrong past 64 tokens on OpenAI's SAEs?",
               "BOS carries massive activations in GPT-2 that would dominate averages; OpenAI's SAEs were trained on "
               "64-token contexts, so later positions give activations they never saw."))),
        "Beyond eyeballing: which latents separate negative from positive?": Section(
            ("AUROC: the chance a negative prompt's token scores higher than a positive one's (ties half).",
             "Measure where the concept is known: the last token of a labelled prompt.",
             "Check the winner on held-out prompts."),
            (Q("Why does the best AUROC drop to near chance over every token?",
               "Most tokens of a prompt carry no sentiment yet, so the latent is 0 on both sides and those ties say "
               "nothing; the concept is known only at the last token."),
             Q("How do AUROC and mean difference rank latents differently?",
               "Mean difference rewards strong firing even on few prompts; AUROC counts how often, pair by pair, so a "
               "rarely firing strong latent ranks lower."),
             Q("Why count ties as half?",
               "A pair where the latent is 0 on both prompts gives no information; counting it as half keeps it at "
               "chance instead of calling it a wrong ranking."))),
        "One latent up close": Section(
            ("A latent's card: density, activation histogram, top contexts, and the tokens it promotes.",
             "Views should agree: where it fires and what it writes."),
            (Q("What does W_dec[:, i] times W_U tell you, and what does it leave out?",
               "The next tokens the latent pushes up or down directly; it ignores the final LayerNorm and every later "
               "layer, so it is a hint, not the whole story."),
             Q("What would make you distrust a label like 'negative sentiment' for this latent?",
               "Contexts and promoted tokens that disagree, a very high density, or firing concentrated on one token "
               "type (here the full stop)."))),
        "Checking against the truth (tiny world only)": Section(
            ("The chosen latent is a conjunction: negative sentiment at a full stop.",
             "Per token it is near chance; per story it separates sentiment cleanly.",
             "A linear probe reads sentiment from nearly every token: the concept is there, split over latents."),
            (Q("Is this latent a 'negative sentiment detector'?",
               "No: about nine in ten firings are in negative stories, mostly on full stops; on most negative tokens "
               "it is 0. It tracks negative sentiment at sentence ends."),
             Q("What does the linear probe add to the picture?",
               "It shows the information is present at every token; the SAE splits it across latents tied to "
               "positions and words, so no single latent covers it."))),
        "Explore on your own": Section(
            ("The panel: a prompt's top latents, the heatmap of the strongest, and any latent's card.",),
            (Q("Pick a latent from the panel and say what evidence you would need before naming it.",
               "Top contexts that share a pattern, promoted tokens that fit, held-out prompts where it fires as "
               "predicted, and ideally an intervention."),
             Q("How would you test a label you gave a latent on new text?",
               "Write prompts with and without the concept and compare the latent's activation (an AUROC on "
               "held-out prompts)."))),
        "Summary": Section(
            ("Rank by AUROC where the concept is known; cards explain; ground truth reveals conjunctions.",),
            (Q("What is the difference between a latent that fires on negative text and one the model uses?",
               "Firing is correlation; use is causal and needs an intervention: patching in notebook 03."),
             Q("Why did single latents look perfect at the last token yet weak per token?",
               "The labelled position is where they fire; elsewhere the sentiment is spread over other latents."))),
    },
    "03_activation_patching": {
        "Clean vs corrupted, and a metric": Section(
            ("A clean/corrupted pair that lines up token by token and differs in one word.",
             "Logit difference with log-sum-exp pooling; normalised: 0 = still corrupted, 1 = clean again."),
            (Q("Why pool the answer logits with log-sum-exp rather than averaging?",
               "One strong answer should count; an average is dragged down by answer words the model does not "
               "consider."),
             Q("Why must each answer word be a single token?",
               "Otherwise the metric silently scores a word piece, which is not the answer."))),
        "Patching the residual stream, layer by layer and position by position": Section(
            ("Before block 0 only the changed word matters; from block 1 on only the last position does.",
             "Block 0's attention moves the information; its MLP rewrites it.",
             "Hand loop, TransformerLens and batched patch_residual give the same map."),
            (Q("What does it mean that patching 'love' restores the answer before block 0 but not after?",
               "By block 1 the information has been copied to the last position; the word's own position no longer "
               "carries what the answer is read from."),
             Q("Why is attention the component that can move information between positions?",
               "MLPs act on each position separately; only attention reads other positions."),
             Q("Why must the clean activation never be edited in place in the hook?",
               "It is the cached clean run shared by every patch; an in-place edit would corrupt all later patches."))),
        "Down to SAE latents": Section(
            ("Splice as decode(z) + error: exact, so changing one latent moves x along its decoder column only.",
             "Patching (clean value into corrupted) and ablation (zero in clean) rank the latents the model uses.",
             "No single latent restores much: sentiment is spread over many latents."),
            (Q("Why keep the error term when splicing the SAE in?",
               "With the error term the model runs on x exactly, so the only change is the one we make to a latent; "
               "without it the SAE's reconstruction error would change the answer by itself."),
             Q("What is the difference between patching and ablating a latent?",
               "Patching sets it to its clean value in the corrupted run (what restores the answer); ablation zeroes "
               "it in the clean run (what the clean answer depends on)."))),
        "Attribution patching: every latent from one backward pass": Section(
            ("grad x (z_clean - z_corrupted) estimates every patch from one forward and one backward pass.",
             "Good for small changes (single latents), overshoots for big ones (whole residual vectors)."),
            (Q("Why does attribution patching fail for whole residual vectors?",
               "It is a straight-line estimate; a big change drives LayerNorm, attention and the softmax far from "
               "where the gradient was taken."),
             Q("How would you use attribution and patching together on a big model?",
               "Attribution to find candidates cheaply, then real patching to confirm the strongest."))),
        "Checking against the truth (tiny world only)": Section(
            ("Patching points at the word that reveals the sentiment.",
             "Top patched latents lean the way AUROC says; AUROC tracks, patching says what is used."),
            (Q("One of AUROC's extreme latents has little patching effect. Why?",
               "It fires in both prompts, so copying its clean value changes little; ablation shows its weight."),
             Q("Why is AUROC alone not enough to say a latent matters for the answer?",
               "AUROC measures correlation with the label; the model may read the answer from elsewhere."))),
        "Try it yourself": Section(
            ("The panel draws the map for any prompt pair and patches each latent at a chosen position.",),
            (Q("Design a prompt pair for another concept. What must it satisfy?",
               "Same number of tokens, one word changed, answer words that are single tokens and that the two prompts "
               "should separate."),
             Q("When the attribution estimate and real patching disagree for a latent, which do you trust?",
               "Real patching; the estimate is linear and only a guide."))),
        "Summary": Section(
            ("Patching turns 'where is it?' into numbers; SAE splicing makes latents knobs; attribution estimates.",),
            (Q("What question does patching answer that notebook 02's AUROC does not?",
               "Which activations and latents the model uses for this answer, causally."),
             Q("What is the main limitation of single-latent patching here?",
               "The information is spread over many latents, each with a small effect."))),
    },
    "04_steering": {
        "The experiment's settings, and how we score text": Section(
            ("The prompt starts positive, so negative samples after steering are the steering's doing.",
             "Three scores: sentiment (true labels or VADER), well formed (grammar checker), fluency.",
             "Fluency is judged after a neutral context, so it does not reward the unsteered sentiment."),
            (Q("Why judge fluency after 'he is such a' rather than the full prompt?",
               "After 'i love him.' every negative word is unlikely, so fluency would fall when steering works, not "
               "only when the text breaks."),
             Q("Why does the tiny world use true labels and a grammar checker instead of VADER?",
               "Its generator knows the sentiment words and the grammar exactly: a ground truth, not a proxy."))),
        "Which latents? Measure, don't guess": Section(
            ("Rank latents by AUROC at the position where steering acts (last token of labelled prompts).",
             "Online: the blog's four latents (or a ranking for the 32k SAE)."),
            (Q("Why measure at the last token of 'he is such a' prompts?",
               "That is where the model is about to write the sentiment word, where steering has to act."),
             Q("What could go wrong if we picked latents by reading top activations?",
               "Names from examples can be wrong or too broad; AUROC at the right position is a measurement."))),
        "From latents to a steering vector": Section(
            ("A steering vector is a sum of decoder columns, without pre_bias.",
             "'ones', 'measured' and 'unit' differ in length and (for measured) direction.",
             "The SAE standardises input: the vector lives in normalised units."),
            (Q("Why leave out pre_bias?",
               "It is the same for every text, so it carries no direction of any latent."),
             Q("Why does 'measured' point in a different direction from 'ones'?",
               "It weights each column by how strongly its latent fires on real negative text."))),
        "The steering hook, and before and after": Section(
            ("A hook returns activation + scale * v at the chosen positions, without editing its input.",
             "A with block removes the hook even when generation fails.",
             "Steered samples are mostly negative in every seed, and stay well formed."),
            (Q("Why must the hook not edit the activation in place?",
               "A cache (run_with_cache) may hold the same tensor; an in-place edit changes it too."),
             Q("What goes wrong if steering leaves its hook on the model?",
               "Every later generation is silently steered; the with block (try/finally) prevents that."),
             Q("Why compare with unsteered samples rather than greedy text?",
               "Greedy text is one sample; a fair comparison samples both arms with the same seeds."))),
        "Combining features, at equal length": Section(
            ("More latents at a fixed scale also means a longer vector.",
             "At equal length: one latent pushes least; a fourth adds no clear push."),
            (Q("Why rescale every combination to the same length?",
               "Otherwise more latents push harder just because the vector is longer, not because the direction is "
               "better."),
             Q("What would you conclude from a fourth latent adding nothing clear?",
               "More latents are no substitute for length; beyond three the direction does not improve here."))),
        "1.0, the real activations, or unit length?": Section(
            ("'ones' and 'unit' are the same direction: the mode only changes what the scale means.",
             "At equal length 'measured' steers no better than 'ones'."),
            (Q("Why sweep the added length instead of the scale?",
               "The same scale means different lengths for vectors of different norms; length is what sets the "
               "effect."),
             Q("Is the blog's 1.0 per latent a good default?",
               "Yes here: at equal length the measured activations steer no better."))),
        "Measure instead of eyeballing: a scale sweep": Section(
            ("Steering has a window: from the unsteered few to nearly all negative.",
             "Past the breakdown the grammar checker rejects samples that still count as negative.",
             "Sweet spot: smallest scale near the best negativity while the text reads well."),
            (Q("Why is a sentiment score alone a bad success measure?",
               "Broken text still counts as negative; only a well-formedness or fluency measure catches it."),
             Q("How would you find the window on GPT-2 without a grammar checker?",
               "Sweep the scale and watch fluency after the neutral context; the breakdown is where it falls far "
               "below the unsteered value."))),
        "Baselines: a random direction, a difference of means, prompting": Section(
            ("Every vector adds the same length; five seeds draw directions, labelled prompts, prefixes and samples.",
             "Tiny world: a random direction does almost nothing; a difference of means beats the SAE vector.",
             "An SAE vector is named and inspectable and offers a choice among features; it is not the strongest."),
            (Q("Why is a random direction of the same length the first control?",
               "It shows whether any push of that size changes the sentiment; if it did, the SAE direction would "
               "mean nothing."),
             Q("A difference of means from 16 labelled prompts beats the SAE vector. When would you still use the "
               "SAE?",
               "When you need to know what you add (named latents you can check), or a concept you have no labelled "
               "prompts for."),
             Q("What could a difference of means pick up besides sentiment?",
               "Anything else that differs between the two prompt sets, e.g. words or lengths that happen to go with "
               "one label."))),
        "Try it yourself": Section(
            ("The panel: latents, magnitude mode, scale, temperature, seeds; Generate and Sweep.",),
            (Q("You see a striking steered sample. What do you check before believing the effect?",
               "Other seeds and the unsteered share; one sample proves nothing."),
             Q("Which setting would you change first to find your own window, and why?",
               "The scale, in a sweep: it sets the added length, which decides the effect."))),
        "Summary": Section(
            ("Steering vector = sum of decoder columns; compare at equal length; measure a window over seeds.",
             "Report SAE steering beside a random direction and a difference of means (AxBench)."),
            (Q("What controls made the steering claims trustworthy?",
               "Unsteered samples with the same seeds, equal added length, a fluency / grammar measure that does "
               "not reward the sentiment, and baselines (random directions, a difference of means) at that length."),
             Q("How does steering relate to patching?",
               "Both intervene on activations; patching copies values between runs, steering adds a direction while "
               "the model generates."))),
    },
    "05_training_saes": {
        "Activations: from text to training batches": Section(
            ("Stop the forward pass at the hook's block; drop BOS; shuffle tokens from many texts.",),
            (Q("Why drop the BOS position from the training data?",
               "It is the same vector in every text and says nothing about the text; in GPT-2 it is a massive "
               "outlier that would dominate the squared error."),
             Q("Why set the L1 coefficient relative to the activations' norm?",
               "The reconstruction error grows with the square of the scale and L1 linearly, so a fixed number would "
               "mean different sparsity for different models."))),
        "Train the blog's SAE: ReLU + L1, 8x expansion": Section(
            ("One step: loss, backward, optimiser step, decoder columns back to unit norm.",
             "Look at L0 and FVU together; the loss curve hides the trade.",
             "This run is not converged: FVU still falls at the end."),
            (Q("What happens if you forget optimizer.zero_grad()?",
               "Gradients add up across steps; the first step matches but later ones do not."),
             Q("How can you tell the run is not converged?",
               "Held-out FVU still falls over the last fifth of the run."))),
        "Dead latents and resampling": Section(
            ("'high_loss' resampling clearly lowers the dead fraction at 8x and for TopK; at 1x the difference sits "
             "near the seed spread (the verdict lines decide it).",
             "Fewer dead latents is not a better SAE: FVU stays within a fifth at 1x and for TopK, and is much "
             "higher at 8x soon after resampling.",
             "Judge by held-out FVU and L0 after revived latents settle, over seeds."),
            (Q("Why is FVU worse right after resampling at 8x?",
               "Revived latents still fire on many tokens (L0 several times higher) and have not settled."),
             Q("Why draw new directions from badly reconstructed inputs?",
               "They point where the SAE misses structure, so a revived latent has something to explain."),
             Q("What is AuxK and why might it be gentler?",
               "A loss that trains the strongest dead latents to explain what the live ones missed, at every step, "
               "instead of resetting them."))),
        "Does the model still work with the SAE spliced in?": Section(
            ("LM loss recovered: (L_zero - L_SAE) / (L_zero - L_clean).",
             "Fragile where zero-ablation costs little; report CE-loss increase and KL too."),
            (Q("Why is loss recovered fragile at this hook?",
               "Zero-ablating the tiny world's last MLP costs a few hundredths of a nat, so the denominator is small "
               "and a tiny splice cost gives away several percent."),
             Q("Why keep BOS unchanged in the splice hook?",
               "The SAE never saw BOS in training; reconstructing it would add an error that has nothing to do with "
               "the SAE's quality."))),
        "The blog's open question: how many latents?": Section(
            ("Compare sizes at matched L0 (TopK, k = 16).",
             "8x reconstructs a little better than 1x in every seed; most added latents die.",
             "No claim about convergence: equal-step runs."),
            (Q("Why hold L0 fixed when comparing sizes?",
               "A lower FVU at a higher L0 says nothing: sparsity and reconstruction trade against each other."),
             Q("What does a real model change about the answer?",
               "It has vastly more features: OpenAI found reconstruction keeps improving as a power law up to 16M "
               "latents when each is trained long enough."))),
        "Do the latents match concepts we know? (tiny world)": Section(
            ("Single latents separate sentiment and certainty per story (AUROC at least 0.9), far less per token.",
             "A linear probe reads the concepts from most tokens."),
            (Q("Why does a latent score high per story but low per token?",
               "It fires on only some tokens of a story; the story average separates, single tokens do not."),
             Q("What is the probe a baseline for?",
               "Whether the concept is linearly present at all, whatever the SAE's latents do with it."))),
        "Save and load": Section(
            ("sae.save writes OpenAI's state-dict format atomically, plus the hook in a small JSON.",),
            (Q("Why write the file atomically?",
               "A half-written file never replaces a good one if training or saving is interrupted."),
             Q("What does the OpenAI format buy you?",
               "The same file loads in saelab and in OpenAI's own sparse_autoencoder code."))),
        "Try it yourself: train live": Section(
            ("Train in a background thread; try a larger L1, TopK k = 8, a longer run.",),
            (Q("You see one run with a lower FVU. What do you do before believing it?",
               "Train again with other seeds and compare at the same L0 and steps."),
             Q("What happens to L0 and FVU with a 10x larger L1 coefficient?",
               "L0 falls and FVU rises: more sparsity, worse reconstruction."))),
        "Summary": Section(
            ("Stream activations well; one training step; dead latents; loss recovered; size at matched L0.",),
            (Q("Which single number would you report for an SAE, and why is one not enough?",
               "None alone: L0, FVU, dead fraction and loss recovered (with CE increase and KL) each miss something."),
             Q("What did resampling teach about judging fixes?",
               "A lower dead fraction is not a better SAE: judge on held-out FVU and L0 after settling, over seeds."))),
    },
    "06_evaluating_saes": {
        "Why L0 and FVU are not enough": Section(
            ("Toy with parents implied by children; six architectures, three seeds, three sparsities each.",
             "What each architecture changes: BatchTopK, JumpReLU (straight-through threshold, L0 penalty), Gated "
             "(gate and magnitude, weight tying), Matryoshka (loss over nested prefixes).",
             "TopK and Matryoshka: same L0 and FVU, different MCC."),
            (Q("How can two SAEs with the same L0 and FVU differ in what they learned?",
               "Reconstruction can be achieved with different dictionaries; whether a latent is a feature is a "
               "separate question (MCC, absorption)."),
             Q("Why does JumpReLU need a straight-through estimator?",
               "The step H(pre - θ) has zero gradient almost everywhere, so θ learns from a kernel-smoothed "
               "pseudo-gradient near the threshold."),
             Q("Why is BatchTopK, not TopK, the control for Matryoshka?",
               "Matryoshka uses BatchTopK's code; only the nested-prefix loss differs, so any difference is the "
               "loss's."))),
        "Ground-truth recovery on toy data": Section(
            ("MCC (mean correlation coefficient of matched features): Hungarian matching on |cos|.",
             "Precision / recall / F1 per latent, uniqueness, shrinkage."),
            (Q("Why Hungarian matching and not greedy?",
               "Greedy can give one latent to two features and count it twice; Hungarian finds the best "
               "one-to-one matching."),
             Q("Why take the absolute value of the cosine?",
               "A latent may point at -f and still represent the feature."))),
        "The tiny world's labels: k-sparse probing and absorption": Section(
            ("k-sparse probing: k latents beside a full linear probe (a baseline, not a ceiling: label noise).",
             "Absorption by the recipe: main latents by k-sparse probing, splits are not absorption, an absorber "
             "carries 40% of the probe's projection.",
             "No single 'refers to a woman' latent: names absorb the parent."),
            (Q("Why can a probe on a few latents beat the linear probe on topic?",
               "About a fifth of the topic labels have no topic sentence (label noise), and the linear probe fits "
               "160 dimensions on 400 stories; it is a baseline, not a ceiling."),
             Q("When is a second parent latent a split and not an absorber?",
               "When adding it to the k-sparse probe raises F1 by more than 0.03: it covers a real share of the "
               "parent, so it counts as a main latent."),
             Q("Explain absorption with 'she' and 'mia'.",
               "On 'mia' the latent for the name fires and carries the 'woman' direction while the parent's main "
               "latents stay silent; the parent feature is absorbed into the child."))),
        "Autointerp offline, without any API": Section(
            ("Explanations are predicates over known facts; the explainer picks the best F1 term or conjunction.",
             "Scorers: detection, fuzzing, simulation; calibrated with too broad and too narrow explanations; "
             "widen an explanation that is too narrow for its latent."),
            (Q("What does it mean when the too broad explanation beats the explainer's?",
               "The explainer's predicate covers only the strongest activations: it is too narrow for the latent, "
               "so the explanation should be widened."),
             Q("What does the offline version leave out compared with an LLM explainer?",
               "Free-text explanations over open-ended text; here explanations are predicates over known labels."))),
        "The architectures, side by side, at the same L0": Section(
            ("Toy at L0 = 2 on each seed's curve: TopK matches features best of four; ReLU shrinks most; "
             "absorption is modest once splits are counted; Matryoshka against BatchTopK by the verdict lines.",
             "Tiny world: Matryoshka reconstructs worse than BatchTopK; the splice adds under 0.03 nats.",
             "No architecture wins every column."),
            (Q("Why compare architectures at matched L0 rather than at one setting each?",
               "Every metric moves with L0; at one setting each, a difference may only be a difference in sparsity."),
             Q("Why plot the CE increase rather than loss recovered here?",
               "Every SAE recovers nearly all the loss, so loss recovered shows noise and can exceed 1 when the "
               "splice lowers the loss a little."),
             Q("Which architecture would you pick, and for what question?",
               "It depends: TopK for matching features on the toy, BatchTopK for reconstruction at a fixed "
               "average L0, and Matryoshka only where its verdict lines show its advantage."))),
        "Try it yourself": Section(
            ("The panel trains one SAE of any architecture on the toy or the tiny world.",),
            (Q("What do you compare before saying one architecture is better?",
               "Several seeds at matched sparsity, on the metric that matches your question."),
             Q("Which metric changes most when you raise the sparsity setting?",
               "L0 falls and FVU rises; the label metrics move in ways worth checking over seeds."))),
        "Summary": Section(
            ("Ground truth shows what L0 and FVU miss; compare along curves at matched L0 with controls.",),
            (Q("What would you report to someone choosing an SAE for interpretability?",
               "Sparsity-matched comparisons over seeds on recovery, probing, absorption and autointerp, with the "
               "spread and the closest control."),
             Q("Which toy verdicts did the tiny world confirm and which not?",
               "The tiny world adds a cost the toy did not show as clearly (Matryoshka reconstructs worse than "
               "BatchTopK on every seed); its effect on absorption shows only where the verdict lines say so."))),
    },
    "07_circuits": {
        "Transcoders: sparse features that stand in for each MLP": Section(
            ("A transcoder reads the MLP's input and predicts its output through sparse features.",
             "Baselines: linear maps lose a little, zero ablation several nats; the transcoders close most of the "
             "gap from the linear maps to the exact model.",
             "Per-layer transcoders are Circuit Tracing's baseline; cross-layer transcoders its method."),
            (Q("Why compare the transcoders with linear maps and not only with zero ablation?",
               "The tiny world's MLPs are close to linear, so linear maps already recover almost everything; only "
               "beating them shows the features add something."),
             Q("What happens to what the transcoders miss?",
               "It becomes error nodes in the graph, so the graph still explains the exact model's output."))),
        'The attribution graph of "i love him. he is such a"': Section(
            ("Freeze attention patterns and LayerNorm scales: the model is linear in feature activations.",
             "Edge = direct effect x source activation; edges add up to pre-activations exactly.",
             "Influence: the sum over paths of every length, w (A + A^2 + ...).",
             "Replacement and completeness scores: how much runs through features vs errors."),
            (Q("Why must attention and LayerNorm be frozen to define edges?",
               "Only then is the model linear in the features, so direct effects are well defined and add up."),
             Q("What does the replacement score measure?",
               "The share of influence on the answer that starts at input tokens rather than error nodes."))),
        "Pruning and reading the graph": Section(
            ("Keep the fewest, most influential nodes that together hold a share of the influence; then edges.",
             "The drawing: hook points in rows, positions in columns, features labelled; the panel shows cards."),
            (Q("Why prune by influence rather than by edge weight alone?",
               "Influence counts indirect paths to the answer; a large edge far from the answer may not matter."),
             Q("What does a feature card add to a node in the graph?",
               "Where it fires and which words it promotes, so a node becomes something to read."))),
        "Validation: does the graph predict what interventions do?": Section(
            ("Local replacement model (TopK redone, errors kept) vs real model (MLPs run, decoded contribution "
             "removed).",
             "Both frozen: r close to 1, close to a tautology; attention free: still close; LayerNorm free: drops.",
             "Real model: lower agreement; for two features switched off together the sign is wrong."),
            (Q("Why is the frozen agreement close to tautological?",
               "The graph is the exact linearisation of that frozen system; only TopK re-selection can differ."),
             Q("Which frozen part does the graph's failure come from here?",
               "LayerNorm: freezing it alone restores the agreement; freezing attention alone does not."),
             Q("How would you test a path found in the graph?",
               "Intervene in the real model (subtract the features' decoded contributions from their MLPs' outputs) "
               "and compare with the graph's prediction, also for larger and joint interventions."))),
        "Ground truth: does the graph find the tiny world's true cause?": Section(
            ("Part of the influence passes through the sentiment word, almost all via its token.",
             "Sentiment features: AUROC plus an autointerp predicate that names the same sentiment.",
             "One signed target for graph and patching: both single out ' love'; the graph also credits shared tokens."),
            (Q("Why did unsigned influence make the sentiment word look minor?",
               "It aims at the top-10 logits (all positive adjectives) with absolute values; with the signed "
               "positive-minus-negative target, ' love' is the largest source."),
             Q("Is a graph that puts little weight on the true cause wrong?",
               "Not necessarily: it answers a different question; check causal claims with interventions."))),
        "Online: GPT-2 small with OpenAI's residual-stream SAEs": Section(
            ("Residual-stream SAEs at layers 4, 8, 10; MLPs linearised; first-order edges.",),
            (Q("What is weaker about the GPT-2 graph than the tiny world's?",
               "No ground truth and first-order (gradient x activation) edges between SAE layers, not exact ones."),
             Q("How would you check a GPT-2 path?",
               "With interventions, as in section 4."))),
        "Summary": Section(
            ("Transcoders, an exact graph of the frozen model, scores, pruning, validation and ground truth.",),
            (Q("What does an attribution graph explain, and what does it leave out?",
               "Direct effects at the clean run's attention and LayerNorm; how they respond to changes is left out "
               "(here LayerNorm's response is what breaks its predictions in the real model)."),
             Q("Across the course, which methods did ground truth confirm and which did it qualify?",
               "Patching found the true cause sharply; latents were conjunctions rather than clean concepts; the graph "
               "found it too once it attributed the same signed target as patching."))),
    },
}
