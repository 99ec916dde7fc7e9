-- A filter of items_combinations.sql: the references of the combinations in lines of orders that
-- hold stock (as select_demand.sql counts them), so that the demand resolves only those, never the
-- whole catalog.
AND pa.reference IN (
  SELECT ref_pa.reference
  FROM {p}orders AS ref_o
  LEFT JOIN {p}order_state AS ref_os ON ref_os.id_order_state = ref_o.current_state
  JOIN {p}order_detail AS ref_od ON ref_od.id_order = ref_o.id_order
  JOIN {p}product_attribute AS ref_pa ON ref_pa.id_product_attribute = ref_od.product_attribute_id
  WHERE ref_o.id_shop IN %(shops)s AND COALESCE(ref_os.shipped, 0) = 0 AND ref_o.current_state NOT IN %(not_reserving)s)
