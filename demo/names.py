"""Curated French names, streets and other vocabulary for the simulated town.

No third-party generator: these lists are hand-written and the choice among them is
driven by the town's seeded random generator, so a town is reproducible.
"""

from __future__ import annotations

# Frequent French surnames, including particles, compound and accented ones.
SURNAMES = [
    "Martin", "Bernard", "Thomas", "Petit", "Robert", "Richard", "Durand", "Dubois",
    "Moreau", "Laurent", "Simon", "Michel", "Lefèvre", "Leroy", "Roux", "David",
    "Bertrand", "Morel", "Fournier", "Girard", "Bonnet", "Dupont", "Lambert", "Fontaine",
    "Rousseau", "Vincent", "Muller", "Lefebvre", "Faure", "André", "Mercier", "Blanc",
    "Guérin", "Boyer", "Garnier", "Chevalier", "François", "Legrand", "Gauthier",
    "Garcia", "Perrin", "Robin", "Clément", "Morin", "Nicolas", "Henry", "Roussel",
    "Mathieu", "Gautier", "Masson", "Marchand", "Duval", "Denis", "Dumont", "Marie",
    "Lemaire", "Noël", "Meyer", "Dufour", "Meunier", "Brun", "Blanchard", "Giraud",
    "Joly", "Rivière", "Lucas", "Brunet", "Gaillard", "Barbier", "Arnaud", "Martinez",
    "Gérard", "Roche", "Renard", "Schmitt", "Roy", "Leroux", "Colin", "Vidal", "Caron",
    "Picard", "Roger", "Fabre", "Aubert", "Lemoine", "Renaud", "Dumas", "Lacroix",
    "Olivier", "Philippe", "Bourgeois", "Pierre", "Benoît", "Rey", "Leclerc", "Payet",
    "Rolland", "Leclercq", "Guillaume", "Lecomte", "Lopez", "Jean", "Dupuy", "Guillot",
    "Hubert", "Berger", "Carpentier", "Sanchez", "Dupuis", "Moulin", "Louis", "Deschamps",
    "Huet", "Vasseur", "Perez", "Boucher", "Fleury", "Royer", "Klein", "Jacquet", "Adam",
    "Paris", "Poirier", "Marty", "Aubry", "Guyot", "Carré", "Charles", "Renault",
    "Charpentier", "Ménard", "Maillard", "Baron", "Bertin", "Bailly", "Hervé", "Schneider",
    "Fernandez", "Le Gall", "Collet", "Léger", "Bouvier", "Julien", "Prévost", "Millet",
    "Perrot", "Daniel", "Le Roux", "Cousin", "Germain", "Breton", "Besson", "Langlois",
    "Rémy", "Le Goff", "Pelletier", "Lévêque", "Perrier", "Leblanc", "Barré", "Lebrun",
    "Marchal", "Weber", "Mallet", "Hamon", "Boulanger", "Jacob", "Monnier", "Michaud",
    "Rodriguez", "Guichard", "Gillet", "Étienne", "Grondin", "Poulain", "Tessier",
    "Chevallier", "Collin", "Chauvin", "Da Silva", "Bouchet", "Gay", "Lemaître", "Bénard",
    "Maréchal", "Humbert", "Reynaud", "Antoine", "Hoarau", "Perret", "Barthélemy",
    "Cordier", "Pichon", "Lejeune", "Gilbert", "Lamy", "Delaunay", "Pasquier", "Carlier",
    "Laporte", "Le Bihan", "Guillou", "Le Floch", "Tanguy", "Guégan", "Le Corre",
    "Kerbrat", "Le Moal", "Riou", "Jégou", "Bouvet", "Hervouet", "Chéneau", "Bréchet",
    "Tessier", "Pineau", "Rabiller", "Coquet", "Sorin", "Ménager", "Rouaud", "Gouraud",
    "Brochard", "Pageot", "Baudry", "Bouchaud", "Guérineau", "Chauvet", "Ferré", "Béziau",
    "Jaunâtre", "Ollivier", "De La Fontaine", "Du Pont", "De Oliveira", "Dos Santos",
    "Ben Ali", "Nguyen", "Diallo", "Haddad", "Benali", "Traoré", "Yilmaz", "Ferreira",
    "Rodrigues", "Pereira", "Mendy", "Cissé", "Kone", "Moreira", "Lefranc", "Lebreton",
    "Le Brun", "Saint-Martin", "Le Hénaff", "Bodin", "Ledoux", "Valentin", "Fouquet",
]

# First names of parents (born 1970-2000).
FEMALE_ADULT = [
    "Marie", "Nathalie", "Isabelle", "Sylvie", "Catherine", "Sandrine", "Céline",
    "Stéphanie", "Aurélie", "Émilie", "Julie", "Caroline", "Sophie", "Virginie", "Élodie",
    "Laetitia", "Audrey", "Mélanie", "Karine", "Anne", "Valérie", "Claire", "Delphine",
    "Séverine", "Christelle", "Hélène", "Amandine", "Camille", "Laura", "Pauline",
    "Marion", "Charlotte", "Sarah", "Anaïs", "Justine", "Élise", "Lucie", "Morgane",
    "Jennifer", "Jessica", "Vanessa", "Gaëlle", "Maëlle", "Solène", "Fatima", "Nadia",
    "Samira", "Aïcha", "Ophélie", "Noémie", "Cécile", "Agnès", "Béatrice", "Florence",
]
MALE_ADULT = [
    "Nicolas", "Sébastien", "Julien", "Christophe", "Stéphane", "David", "Frédéric",
    "Laurent", "Olivier", "Cédric", "Jérôme", "Thomas", "Guillaume", "Mathieu", "Vincent",
    "Alexandre", "Romain", "Anthony", "Maxime", "Benjamin", "Damien", "Fabrice", "Franck",
    "Grégory", "Arnaud", "Yannick", "Ludovic", "Kévin", "Jonathan", "Pierre", "Antoine",
    "François", "Bruno", "Éric", "Philippe", "Florian", "Adrien", "Loïc", "Erwan",
    "Gwénaël", "Mickaël", "Karim", "Mohamed", "Rachid", "Mehdi", "Hervé", "Patrice",
    "Thierry", "Yoann", "Jérémy", "Quentin", "Clément", "Aurélien", "Benoît",
]
# Compound first names (written with a hyphen in the civil register).
FEMALE_COMPOUND = [
    "Marie-Claire", "Anne-Sophie", "Marie-Laure", "Anne-Laure", "Marie-Hélène",
    "Marie-Pierre", "Anne-Cécile", "Marie-Anne", "Laure-Anne", "Marie-Christine",
]
MALE_COMPOUND = [
    "Jean-Baptiste", "Pierre-Yves", "Jean-François", "Jean-Marc", "Jean-Philippe",
    "Pierre-Louis", "Jean-Luc", "Marc-Antoine", "Jean-Charles", "Paul-Henri",
]

# First names of children (born 2008-2025).
FEMALE_CHILD = [
    "Léa", "Chloé", "Emma", "Jade", "Louise", "Alice", "Inès", "Zoé", "Lina", "Manon",
    "Léna", "Anaïs", "Camille", "Sarah", "Lola", "Juliette", "Rose", "Ambre", "Léonie",
    "Mia", "Romane", "Agathe", "Margaux", "Clémence", "Mathilde", "Éva", "Nina", "Lou",
    "Maëlys", "Capucine", "Océane", "Lisa", "Elsa", "Iris", "Julia", "Anna", "Victoire",
    "Héloïse", "Apolline", "Constance", "Louna", "Mila", "Alba", "Romy", "Lya", "Candice",
    "Nour", "Yasmine", "Maëlle", "Lucie", "Gabrielle", "Charlie", "Noémie", "Célia",
    "Jeanne", "Adèle", "Aya", "Salomé", "Clara", "Thaïs", "Élise", "Maya", "Olivia",
]
MALE_CHILD = [
    "Gabriel", "Léo", "Raphaël", "Arthur", "Louis", "Jules", "Adam", "Maël", "Hugo",
    "Noah", "Éthan", "Théo", "Nathan", "Timéo", "Lucas", "Tom", "Sacha", "Paul", "Liam",
    "Nolan", "Mathis", "Enzo", "Axel", "Clément", "Baptiste", "Maxence", "Victor",
    "Antoine", "Samuel", "Martin", "Aaron", "Malo", "Gaspard", "Valentin", "Noé", "Eden",
    "Isaac", "Naël", "Ayden", "Mathéo", "Robin", "Simon", "Côme", "Augustin", "Elio",
    "Marius", "Basile", "Titouan", "Evan", "Yanis", "Ilyès", "Rayan", "Mohamed",
    "Kylian", "Lenny", "Timothée", "Gaël", "Erwan", "Loïs", "Célestin", "Corentin",
]
FEMALE_CHILD_COMPOUND = ["Marie-Lou", "Lou-Anne", "Anne-Lise", "Marie-Rose", "Lily-Rose"]
MALE_CHILD_COMPOUND = ["Louis-Marie", "Jean-Baptiste", "Pierre-Louis", "Paul-Arthur"]

# Grandparents (the 'C' contacts).
FEMALE_SENIOR = ["Monique", "Françoise", "Jacqueline", "Martine", "Michèle", "Annie",
                 "Chantal", "Danielle", "Brigitte", "Josiane", "Gisèle", "Odile"]
MALE_SENIOR = ["Jean", "Michel", "Gérard", "Bernard", "Alain", "Jacques", "Daniel",
               "Claude", "René", "Roger", "Guy", "Yves", "André", "Serge"]

# (street name, school sector). Saint-Sébastien-sur-Loire (44230) style addresses.
STREETS = [
    ("rue de la Profondine", "FONTAINE"), ("boulevard des Pas Enchantés", "FONTAINE"),
    ("rue des Pas Enchantés", "FONTAINE"), ("allée des Lilas", "FONTAINE"),
    ("rue du Bois Joli", "FONTAINE"), ("impasse des Mésanges", "FONTAINE"),
    ("rue de la Libération", "JAURES"), ("rue Jean Jaurès", "JAURES"),
    ("place de la Mairie", "JAURES"), ("rue de Verdun", "JAURES"),
    ("rue Maurice Daniel", "JAURES"), ("rue du Général de Gaulle", "JAURES"),
    ("rue de la Gare", "JAURES"), ("avenue de l'Europe", "JAURES"),
    ("route de Clisson", "MACE"), ("rue Jean Macé", "MACE"), ("rue des Mortiers", "MACE"),
    ("rue de la Jaunaie", "MACE"), ("chemin de la Noë", "MACE"), ("allée des Chênes", "MACE"),
    ("rue Victor Hugo", "MACE"), ("rue Pierre Brossolette", "MACE"),
    ("rue du Douet", "VERNE"), ("rue Jules Verne", "VERNE"), ("rue de la Fontaine", "VERNE"),
    ("quai de la Loire", "VERNE"), ("rue du Portereau", "VERNE"),
    ("boulevard des Tilleuls", "VERNE"), ("rue de l'Ile Forget", "VERNE"),
    ("rue des Peupliers", "VERNE"), ("rue Marie Curie", "CURIE"),
    ("avenue Jean Moulin", "CURIE"), ("rue de la Baugerie", "CURIE"),
    ("rue des Grèves", "CURIE"), ("rue du Vivier", "CURIE"), ("allée des Érables", "CURIE"),
    ("rue Pasteur", "CURIE"), ("rue de Bretagne", "CURIE"),
    ("rue Jacques Prévert", "PREVERT"), ("rue de la Pyramide", "PREVERT"),
    ("rue des Crêts", "PREVERT"), ("rue de Beautour", "PREVERT"),
    ("impasse du Moulin", "PREVERT"), ("rue des Vignes", "PREVERT"),
    ("chemin des Écoliers", "PREVERT"), ("rue de la Croix Rouge", "PREVERT"),
]

# Towns around, for families who live outside (music school, newcomers' old address).
NEARBY_TOWNS = [
    ("44000", "Nantes"), ("44200", "Nantes"), ("44300", "Nantes"), ("44120", "Vertou"),
    ("44115", "Basse-Goulaine"), ("44400", "Rezé"), ("44115", "Haute-Goulaine"),
    ("44470", "Carquefou"), ("44980", "Sainte-Luce-sur-Loire"), ("44840", "Les Sorinières"),
]
STREETS_ELSEWHERE = [
    "rue de Strasbourg", "boulevard Victor Hugo", "rue Paul Bellamy", "avenue de la Gare",
    "rue du Château", "rue de la République", "rue des Écoles", "allée des Roses",
    "rue Saint-Pierre", "boulevard de la Liberté",
]

EMAIL_DOMAINS = [
    ("gmail.com", 40), ("orange.fr", 14), ("hotmail.fr", 10), ("free.fr", 8),
    ("yahoo.fr", 6), ("laposte.net", 5), ("sfr.fr", 5), ("outlook.fr", 6), ("icloud.com", 4),
    ("wanadoo.fr", 2),
]

# Schools: code, name.
SCHOOLS = [
    ("JAURES", "Jean Jaurès"), ("FONTAINE", "La Fontaine"), ("MACE", "Jean Macé"),
    ("VERNE", "Jules Verne"), ("CURIE", "Marie Curie"), ("PREVERT", "Jacques Prévert"),
]

ASSOCIATION_PATTERNS = [
    "Amicale laïque {place}", "Football Club Sébastiennais", "Judo Club {place}",
    "Tennis Club {place}", "Basket Club Saint-Sébastien", "Comité des fêtes {place}",
    "Les Amis de {place}", "Chorale {song}", "Atelier théâtre {song}",
    "Association des parents d'élèves {school}", "Club des aînés {place}",
    "Gymnastique volontaire {place}", "Rugby Club Sud Loire", "Badminton {place}",
    "Cercle d'échecs {song}", "Yoga et bien-être {place}", "Club photo {song}",
    "Jardins partagés {place}", "Handball Saint-Sébastien", "Danse {song}",
    "Union des commerçants {place}", "Aviron Sud Loire", "Scouts et guides {place}",
    "Secours populaire comité {place}", "Restos du cœur antenne {place}",
]
ASSOCIATION_PLACES = [
    "de la Profondine", "du Douet", "de la Fontaine", "du Portereau", "de Beautour",
    "des Pas Enchantés", "de la Jaunaie", "de l'Ile Forget", "du Vivier", "de la Baugerie",
    "Saint-Sébastien", "sébastiennaise", "des Mortiers", "de la Loire",
]
ASSOCIATION_SONGS = [
    "La Clé des Chants", "Les Voix de Loire", "Arc-en-ciel", "L'Envolée", "Le Fil d'Ariane",
    "Les Baladins", "Crescendo", "Les Tréteaux", "Mosaïque", "L'Estacade",
]
SUBSIDY_PURPOSES = [
    "Fonctionnement annuel", "Achat de matériel sportif", "Organisation du tournoi de printemps",
    "Fête de quartier", "Sortie pédagogique", "Spectacle de fin d'année", "Formation des bénévoles",
    "Déplacements en compétition", "Rénovation du local", "Festival d'été",
]

ROOMS = [
    "ESCALL-GRANDE", "ESCALL-PETITE", "SALLE-PROFONDINE", "SALLE-DOUET", "MAISON-ASSOS-1",
    "MAISON-ASSOS-2", "GYMNASE-JAURES", "GYMNASE-BEAUTOUR", "SALLE-JAUNAIE", "SALLE-VIVIER",
]
EQUIPMENT = ["SONO", "VIDEOPROJ", "TABLES", "CHAISES", "BUVETTE", "SCENE", "PODIUM", "GRILLES"]

# Portal procedures: code -> (service, share of the yearly volume, SLA in days)
PROCEDURES = {
    "INSCRIPTION_SCOLAIRE": ("SCOL", 0, 30),
    "INSCRIPTION_PERISCOLAIRE": ("RESTO", 0, 30),
    "INSCRIPTION_ALSH": ("ALSH", 0, 21),
    "INSCRIPTION_CRECHE": ("MULTI", 0, 90),
    "INSCRIPTION_EMM": ("EMM", 0, 45),
    "ACTE_NAISSANCE": ("ETAT_CIVIL", 28, 7),
    "ACTE_MARIAGE": ("ETAT_CIVIL", 6, 7),
    "ACTE_DECES": ("ETAT_CIVIL", 4, 7),
    "INSCRIPTION_LISTE_ELECTORALE": ("ELECTIONS", 6, 30),
    "RECENSEMENT_CITOYEN": ("ETAT_CIVIL", 4, 15),
    "SIGNALEMENT_VOIRIE": ("TECHNIQUE", 10, 20),
    "RESERVATION_SALLE": ("VIE_ASSOCIATIVE", 0, 21),
    "SUBVENTION_ASSOCIATION": ("VIE_ASSOCIATIVE", 0, 120),
}
ENROLMENT_PROCEDURES = {
    "SCOL": "INSCRIPTION_SCOLAIRE",
    "RESTO": "INSCRIPTION_PERISCOLAIRE",
    "PERI": "INSCRIPTION_PERISCOLAIRE",
    "ALSH": "INSCRIPTION_ALSH",
    "MULTI": "INSCRIPTION_CRECHE",
    "EMM": "INSCRIPTION_EMM",
}

MONTHS_FR = ["JANVIER", "FEVRIER", "MARS", "AVRIL", "MAI", "JUIN", "JUILLET", "AOUT",
             "SEPTEMBRE", "OCTOBRE", "NOVEMBRE", "DECEMBRE"]

# Mojibake: UTF-8 bytes read as Latin-1 (what an old export does to accents).
MOJIBAKE = {c: c.encode("utf-8").decode("latin-1") for c in "éèêëàâäîïôöùûüçÉÈÊÎÔÇ"}

ACCENT_MAP = str.maketrans(
    "éèêëàâäîïôöùûüçÉÈÊËÀÂÄÎÏÔÖÙÛÜÇÿæœ", "eeeeaaaiioouuucEEEEAAAIIOOUUUCyao"
)



# Rarer surnames: a town of 30,000 households holds thousands of surnames, most of them
# shared by a handful of families (the frequent ones above are a minority). Built, not
# drawn, so the pool is the same in every process: regional stems and endings.
_STEMS = ["Ker", "Le Bihan", "Guil", "Mor", "Bou", "Char", "Ber", "Gal", "Tan", "Quin",
          "Pel", "Cor", "Mar", "Jou", "Lan", "Ros", "Dav", "Bel", "Gour", "Trév", "Hal",
          "Cadi", "Pri", "Vil", "Bes", "Fav", "Rab", "Mon", "Cha", "Del", "Sav", "Gir",
          "Pou", "Rig", "Tess", "Lam", "Lag", "Lav", "Mal", "Nog", "Pic", "Sou", "Tou",
          "Vach", "Bau", "Cou", "Dor", "Gren", "Jac", "Lec", "Mig", "Ren", "Rou", "Ter"]
_ENDINGS = ["ec", "ard", "eau", "ier", "in", "on", "et", "aud", "ault", "ic", "ou",
            "elin", "erie", "iot", "ot", "and", "ès", "ay", "ey", "our", "ant", "ais",
            "esse", "ouet", "ignon", "ouarn", "adec", "aden", "ennec", "illard"]
_MIDDLES = ["", "an", "en", "il", "or", "ar", "ou", "el"]
RARE_SURNAMES = sorted({stem + mid + end if " " in stem else (stem + mid + end).title()
                        for stem in _STEMS for mid in _MIDDLES for end in _ENDINGS}
                       - set(SURNAMES))
#: share of surnames drawn from the frequent list (the rest from the rare pool); in
#: France the few hundred most frequent surnames are borne by well under half the people
FREQUENT_SHARE = 0.3


def surname(rng) -> str:
    """A surname: a frequent one (30 %), else one of the rare pool."""
    if rng.random() < FREQUENT_SHARE:
        return rng.choice(SURNAMES)
    return rng.choice(RARE_SURNAMES)

def strip_accents(s: str) -> str:
    return s.translate(ACCENT_MAP)


def mojibake(s: str) -> str:
    return "".join(MOJIBAKE.get(c, c) for c in s)
