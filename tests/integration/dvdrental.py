"""A sample schema shaped like PostgreSQL's well-known DVD rental sample
database, written for the tests (issue 14): 15 tables whose keys draw from
sequences that no column owns (as in every schema restored from an old
dump), an enum, two domains, a partitioned payment table with a partition
in another schema, a tsvector column kept by a trigger, arrays, bytea,
views and functions — and a writer that rents films while a job runs.
"""
import random

from conftest import TxnWriter

SCHEMA = r"""
CREATE SCHEMA archive;
CREATE TYPE mpaa_rating AS ENUM ('G', 'PG', 'PG-13', 'R', 'NC-17');
CREATE DOMAIN year AS integer CONSTRAINT year_check CHECK (VALUE >= 1901 AND VALUE <= 2155);
CREATE DOMAIN email_address AS text CHECK (VALUE ~ '^[^@ ]+@[^@ ]+$');

CREATE FUNCTION last_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.last_update = CURRENT_TIMESTAMP;
  RETURN NEW;
END $$;

CREATE SEQUENCE actor_actor_id_seq;
CREATE TABLE actor (
  actor_id integer DEFAULT nextval('actor_actor_id_seq'::regclass) NOT NULL,
  first_name text NOT NULL,
  last_name text NOT NULL,
  last_update timestamp without time zone DEFAULT now() NOT NULL,
  CONSTRAINT actor_pkey PRIMARY KEY (actor_id)
);
CREATE INDEX idx_actor_last_name ON actor (last_name);

CREATE SEQUENCE category_category_id_seq;
CREATE TABLE category (
  category_id integer DEFAULT nextval('category_category_id_seq'::regclass) NOT NULL PRIMARY KEY,
  name text NOT NULL,
  last_update timestamp without time zone DEFAULT now() NOT NULL
);

CREATE SEQUENCE language_language_id_seq;
CREATE TABLE language (
  language_id integer DEFAULT nextval('language_language_id_seq'::regclass) NOT NULL PRIMARY KEY,
  name character(20) NOT NULL,
  last_update timestamp without time zone DEFAULT now() NOT NULL
);

CREATE SEQUENCE film_film_id_seq;
CREATE TABLE film (
  film_id integer DEFAULT nextval('film_film_id_seq'::regclass) NOT NULL PRIMARY KEY,
  title text NOT NULL,
  description text,
  release_year year,
  language_id smallint NOT NULL REFERENCES language (language_id) ON UPDATE CASCADE ON DELETE RESTRICT,
  rental_duration smallint DEFAULT 3 NOT NULL,
  rental_rate numeric(4,2) DEFAULT 4.99 NOT NULL,
  length smallint,
  replacement_cost numeric(5,2) DEFAULT 19.99 NOT NULL,
  rating mpaa_rating DEFAULT 'G'::mpaa_rating,
  last_update timestamp without time zone DEFAULT now() NOT NULL,
  special_features text[],
  fulltext tsvector NOT NULL
);
CREATE INDEX film_fulltext_idx ON film USING gist (fulltext);
CREATE INDEX idx_title ON film (title);
CREATE TRIGGER film_fulltext_trigger BEFORE INSERT OR UPDATE ON film
  FOR EACH ROW EXECUTE FUNCTION tsvector_update_trigger(fulltext, 'pg_catalog.english', title, description);
CREATE TRIGGER last_updated BEFORE UPDATE ON film FOR EACH ROW EXECUTE FUNCTION last_updated();

CREATE TABLE film_actor (
  actor_id smallint NOT NULL REFERENCES actor (actor_id) ON UPDATE CASCADE ON DELETE RESTRICT,
  film_id smallint NOT NULL REFERENCES film (film_id) ON UPDATE CASCADE ON DELETE RESTRICT,
  last_update timestamp without time zone DEFAULT now() NOT NULL,
  PRIMARY KEY (actor_id, film_id)
);
CREATE TABLE film_category (
  film_id smallint NOT NULL REFERENCES film (film_id) ON UPDATE CASCADE ON DELETE RESTRICT,
  category_id smallint NOT NULL REFERENCES category (category_id) ON UPDATE CASCADE ON DELETE RESTRICT,
  last_update timestamp without time zone DEFAULT now() NOT NULL,
  PRIMARY KEY (film_id, category_id)
);

CREATE SEQUENCE country_country_id_seq;
CREATE TABLE country (
  country_id integer DEFAULT nextval('country_country_id_seq'::regclass) NOT NULL PRIMARY KEY,
  country text NOT NULL,
  last_update timestamp without time zone DEFAULT now() NOT NULL
);
CREATE SEQUENCE city_city_id_seq;
CREATE TABLE city (
  city_id integer DEFAULT nextval('city_city_id_seq'::regclass) NOT NULL PRIMARY KEY,
  city text NOT NULL,
  country_id smallint NOT NULL REFERENCES country (country_id),
  last_update timestamp without time zone DEFAULT now() NOT NULL
);
CREATE SEQUENCE address_address_id_seq;
CREATE TABLE address (
  address_id integer DEFAULT nextval('address_address_id_seq'::regclass) NOT NULL PRIMARY KEY,
  address text NOT NULL,
  address2 text,
  district text NOT NULL,
  city_id smallint NOT NULL REFERENCES city (city_id),
  postal_code text,
  phone text NOT NULL,
  last_update timestamp without time zone DEFAULT now() NOT NULL
);

CREATE SEQUENCE store_store_id_seq;
CREATE SEQUENCE staff_staff_id_seq;
CREATE TABLE staff (
  staff_id integer DEFAULT nextval('staff_staff_id_seq'::regclass) NOT NULL PRIMARY KEY,
  first_name text NOT NULL,
  last_name text NOT NULL,
  address_id smallint NOT NULL REFERENCES address (address_id),
  email email_address,
  store_id smallint NOT NULL,
  active boolean DEFAULT true NOT NULL,
  username text NOT NULL,
  password text,
  last_update timestamp without time zone DEFAULT now() NOT NULL,
  picture bytea
);
CREATE TABLE store (
  store_id integer DEFAULT nextval('store_store_id_seq'::regclass) NOT NULL PRIMARY KEY,
  manager_staff_id smallint NOT NULL REFERENCES staff (staff_id),
  address_id smallint NOT NULL REFERENCES address (address_id),
  last_update timestamp without time zone DEFAULT now() NOT NULL
);

CREATE SEQUENCE customer_customer_id_seq;
CREATE TABLE customer (
  customer_id integer DEFAULT nextval('customer_customer_id_seq'::regclass) NOT NULL PRIMARY KEY,
  store_id smallint NOT NULL,
  first_name text NOT NULL,
  last_name text NOT NULL,
  email email_address,
  address_id smallint NOT NULL REFERENCES address (address_id),
  activebool boolean DEFAULT true NOT NULL,
  create_date date DEFAULT ('now'::text)::date NOT NULL,
  last_update timestamp without time zone DEFAULT now(),
  active integer
);
CREATE INDEX idx_last_name ON customer (last_name);

CREATE SEQUENCE inventory_inventory_id_seq;
CREATE TABLE inventory (
  inventory_id integer DEFAULT nextval('inventory_inventory_id_seq'::regclass) NOT NULL PRIMARY KEY,
  film_id smallint NOT NULL REFERENCES film (film_id),
  store_id smallint NOT NULL,
  last_update timestamp without time zone DEFAULT now() NOT NULL
);

CREATE SEQUENCE rental_rental_id_seq;
CREATE TABLE rental (
  rental_id integer DEFAULT nextval('rental_rental_id_seq'::regclass) NOT NULL PRIMARY KEY,
  rental_date timestamp without time zone NOT NULL,
  inventory_id integer NOT NULL REFERENCES inventory (inventory_id),
  customer_id smallint NOT NULL REFERENCES customer (customer_id),
  return_date timestamp without time zone,
  staff_id smallint NOT NULL REFERENCES staff (staff_id),
  last_update timestamp without time zone DEFAULT now() NOT NULL
);
CREATE UNIQUE INDEX idx_unq_rental ON rental (rental_date, inventory_id, customer_id);

CREATE SEQUENCE payment_payment_id_seq;
CREATE TABLE payment (
  payment_id integer DEFAULT nextval('payment_payment_id_seq'::regclass) NOT NULL,
  customer_id smallint NOT NULL REFERENCES customer (customer_id),
  staff_id smallint NOT NULL REFERENCES staff (staff_id),
  rental_id integer NOT NULL REFERENCES rental (rental_id),
  amount numeric(5,2) NOT NULL,
  payment_date timestamp without time zone NOT NULL,
  PRIMARY KEY (payment_date, payment_id)
) PARTITION BY RANGE (payment_date);
CREATE TABLE archive.payment_p2006 PARTITION OF payment
  FOR VALUES FROM (MINVALUE) TO ('2007-01-01');
CREATE TABLE payment_p2007_01 PARTITION OF payment FOR VALUES FROM ('2007-01-01') TO ('2007-02-01');
CREATE TABLE payment_p2007_02 PARTITION OF payment FOR VALUES FROM ('2007-02-01') TO ('2007-03-01');
CREATE TABLE payment_p2007_later PARTITION OF payment FOR VALUES FROM ('2007-03-01') TO (MAXVALUE);

CREATE VIEW actor_info AS
  SELECT a.actor_id, a.first_name, a.last_name, count(fa.film_id) AS films
  FROM actor a LEFT JOIN film_actor fa ON fa.actor_id = a.actor_id
  GROUP BY a.actor_id, a.first_name, a.last_name;
CREATE VIEW film_list AS
  SELECT f.film_id AS fid, f.title, c.name AS category, f.rental_rate AS price, f.rating
  FROM film f LEFT JOIN film_category fc ON fc.film_id = f.film_id
  LEFT JOIN category c ON c.category_id = fc.category_id;
CREATE MATERIALIZED VIEW rental_by_category AS
  SELECT c.name AS category, sum(p.amount) AS total_sales
  FROM payment p JOIN rental r ON r.rental_id = p.rental_id
  JOIN inventory i ON i.inventory_id = r.inventory_id
  JOIN film_category fc ON fc.film_id = i.film_id JOIN category c ON c.category_id = fc.category_id
  GROUP BY c.name;
CREATE UNIQUE INDEX rental_category ON rental_by_category (category);
CREATE FUNCTION film_in_stock(p_film_id integer, p_store_id integer) RETURNS SETOF integer
  LANGUAGE sql AS $$
  SELECT inventory_id FROM inventory WHERE film_id = $1 AND store_id = $2
$$;
CREATE FUNCTION last_day(timestamp without time zone) RETURNS date LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT CASE WHEN EXTRACT(MONTH FROM $1) = 12 THEN (((EXTRACT(YEAR FROM $1) + 1) operator(pg_catalog.||) '-01-01')::date - INTERVAL '1 day')::date
         ELSE ((EXTRACT(YEAR FROM $1) operator(pg_catalog.||) '-' operator(pg_catalog.||) (EXTRACT(MONTH FROM $1) + 1) operator(pg_catalog.||) '-01')::date - INTERVAL '1 day')::date END
$$;
CREATE TRIGGER last_updated BEFORE UPDATE ON actor FOR EACH ROW EXECUTE FUNCTION last_updated();
CREATE TRIGGER last_updated BEFORE UPDATE ON customer FOR EACH ROW EXECUTE FUNCTION last_updated();
COMMENT ON TABLE payment IS 'payments, one partition a period';
"""

DATA = r"""
INSERT INTO language (name) VALUES ('English'), ('Italian'), ('Japanese');
INSERT INTO category (name) SELECT 'Category ' || g FROM generate_series(1, 16) g;
INSERT INTO actor (first_name, last_name) SELECT 'First' || g, 'Last' || (g % 40) FROM generate_series(1, 200) g;
INSERT INTO film (title, description, release_year, language_id, length, rating, special_features)
SELECT 'Film ' || g, 'A story about ' || md5(g::text), 2006, 1 + g % 3, 60 + g % 120,
       (ARRAY['G', 'PG', 'PG-13', 'R', 'NC-17'])[1 + g % 5]::mpaa_rating,
       ARRAY['Trailers', CASE WHEN g % 2 = 0 THEN 'Deleted Scenes' END]
FROM generate_series(1, 300) g;
INSERT INTO film_actor (actor_id, film_id) SELECT 1 + g % 200, 1 + g % 300 FROM generate_series(1, 1000) g
  ON CONFLICT DO NOTHING;
INSERT INTO film_category (film_id, category_id) SELECT g, 1 + g % 16 FROM generate_series(1, 300) g;
INSERT INTO country (country) SELECT 'Country ' || g FROM generate_series(1, 20) g;
INSERT INTO city (city, country_id) SELECT 'City ' || g, 1 + g % 20 FROM generate_series(1, 60) g;
INSERT INTO address (address, district, city_id, postal_code, phone)
SELECT g || ' Main St', 'District ' || g % 7, 1 + g % 60, lpad(g::text, 5, '0'), '555-' || g
FROM generate_series(1, 120) g;
INSERT INTO staff (first_name, last_name, address_id, email, store_id, username, picture)
VALUES ('Mike', 'Hillyer', 1, 'mike@sakilastaff.com', 1, 'Mike', '\x89504e470d0a1a0a'),
       ('Jon', 'Stephens', 2, 'jon@sakilastaff.com', 2, 'Jon', NULL);
INSERT INTO store (manager_staff_id, address_id) VALUES (1, 3), (2, 4);
INSERT INTO customer (store_id, first_name, last_name, email, address_id, active)
SELECT 1 + g % 2, 'Customer' || g, 'Surname' || g % 30, 'c' || g || '@example.org', 1 + g % 120, 1
FROM generate_series(1, 250) g;
INSERT INTO inventory (film_id, store_id) SELECT 1 + g % 300, 1 + g % 2 FROM generate_series(1, 900) g;
INSERT INTO rental (rental_date, inventory_id, customer_id, return_date, staff_id)
SELECT TIMESTAMP '2006-12-01' + g * interval '3 hours', 1 + g % 900, 1 + g % 250,
       TIMESTAMP '2006-12-04' + g * interval '3 hours', 1 + g % 2
FROM generate_series(1, 1500) g;
INSERT INTO payment (customer_id, staff_id, rental_id, amount, payment_date)
SELECT r.customer_id, r.staff_id, r.rental_id, 0.99 + (r.rental_id % 10), r.rental_date + interval '1 hour'
FROM rental r;
REFRESH MATERIALIZED VIEW rental_by_category;
ANALYZE;
"""

TABLES = ["public.actor", "public.address", "public.category", "public.city", "public.country",
          "public.customer", "public.film", "public.film_actor", "public.film_category",
          "public.inventory", "public.language", "public.payment", "public.rental",
          "public.staff", "public.store"]


def create(db):
    db.execute(SCHEMA)
    db.execute(DATA)


class Renter(TxnWriter):
    """Rents films, takes payments, returns films, renames actors and
    customers, adds films (their tsvector kept by the trigger), and now and
    then deletes a payment, until stopped."""

    def __init__(self, database, seed=7):
        super().__init__(database)
        self.rand = random.Random(seed)

    def write(self, cur):
        r = self.rand
        cur.execute("INSERT INTO rental (rental_date, inventory_id, customer_id, staff_id) "
                    "VALUES (TIMESTAMP '2007-01-15' + %s * interval '1 minute', %s, %s, %s) "
                    "RETURNING rental_id, customer_id, staff_id, rental_date",
                    (self.txns, r.randrange(1, 900), r.randrange(1, 250), r.randrange(1, 3)))
        rental_id, customer, staff, when = cur.fetchone()
        cur.execute("INSERT INTO payment (customer_id, staff_id, rental_id, amount, payment_date) "
                    "VALUES (%s, %s, %s, %s, %s + %s * interval '20 days')",
                    (customer, staff, rental_id, r.randrange(99, 999) / 100, when,
                     r.randrange(0, 4)))
        cur.execute("UPDATE rental SET return_date = rental_date + interval '2 days' "
                    "WHERE rental_id = %s", (r.randrange(1, 1500),))
        if r.random() < 0.3:
            cur.execute("UPDATE actor SET last_name = last_name || 'x' WHERE actor_id = %s",
                        (r.randrange(1, 200),))
        if r.random() < 0.2:
            cur.execute("INSERT INTO film (title, description, language_id, rating) "
                        "VALUES (%s, 'new release', 1, 'PG')", (f"New {self.txns}",))
        if r.random() < 0.2:
            cur.execute("UPDATE customer SET active = 0, email = %s WHERE customer_id = %s",
                        (f"moved{self.txns}@example.org", r.randrange(1, 250)))
        if r.random() < 0.1:
            cur.execute("DELETE FROM payment WHERE payment_id = (SELECT min(payment_id) FROM payment)")
