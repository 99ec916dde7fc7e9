-- A filter of items_products.sql: the references of the products (without combinations) in lines
-- of orders that hold stock (as select_demand.sql counts them).
AND prod.reference IN (
  SELECT ref_prod.reference
  FROM {p}orders AS ref_o
  LEFT JOIN {p}order_state AS ref_os ON ref_os.id_order_state = ref_o.current_state
  JOIN {p}order_detail AS ref_od ON ref_od.id_order = ref_o.id_order
  JOIN {p}product AS ref_prod ON ref_prod.id_product = ref_od.product_id
  WHERE COALESCE(ref_od.product_attribute_id, 0) = 0
    AND ref_o.id_shop IN %(shops)s AND COALESCE(ref_os.shipped, 0) = 0 AND ref_o.current_state NOT IN %(not_reserving)s)
